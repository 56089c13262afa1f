from __future__ import annotations

from django.contrib import admin

from console.accounts.models import AccessToken


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created", "last_used"]
    readonly_fields = ["prefix", "key_hash", "created", "last_used"]
