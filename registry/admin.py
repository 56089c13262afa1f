from __future__ import annotations

from django.contrib import admin

from registry.models import PublicRepository, Pull, Push, RegistryAccount


@admin.register(RegistryAccount)
class RegistryAccountAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "url", "username", "owner", "updated"]
    list_filter = ["kind"]
    search_fields = ["name", "url", "username", "owner__username"]
    # The secret is never shown, not even to staff: it is changed through the console's own forms.
    exclude = ["secret"]


@admin.register(PublicRepository)
class PublicRepositoryAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "created"]
    search_fields = ["name"]


@admin.register(Push)
class PushAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "image", "repository", "tag", "registry", "owner", "queued_at"]
    list_filter = ["status"]
    readonly_fields = ["layers", "digest", "error"]


@admin.register(Pull)
class PullAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "reference", "registry", "owner", "queued_at"]
    list_filter = ["status"]
    readonly_fields = ["layers", "digest", "image_id", "error"]
