from __future__ import annotations

from django.contrib import admin

from fleet.models import Deployment, DeploymentTarget, Host


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "url", "status", "last_seen"]
    list_filter = ["status"]
    search_fields = ["name", "url"]
    # The TLS material and the ssh key stay out of the admin: they are write-only everywhere.
    exclude = ["tls_ca_cert", "tls_client_cert", "tls_client_key", "ssh_private_key"]
    readonly_fields = ["status", "status_reason", "info", "engine_id", "last_seen", "last_checked"]


class DeploymentTargetInline(admin.TabularInline):
    model = DeploymentTarget
    extra = 0
    readonly_fields = ["host", "host_name", "status", "step", "container_id", "url", "error"]


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "image", "status", "created"]
    list_filter = ["status"]
    search_fields = ["name", "image"]
    inlines = [DeploymentTargetInline]
