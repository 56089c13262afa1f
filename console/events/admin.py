from __future__ import annotations

from django.contrib import admin

from console.events.models import Delivery, Event, Webhook


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("created", "owner", "kind", "repository")
    list_filter = ("kind",)
    readonly_fields = ("owner", "kind", "key", "repository", "data", "created")


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ("url", "owner", "active", "created")
    # The secret is never shown, even to staff.
    exclude = ("secret",)
    readonly_fields = ("owner",)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("uid", "webhook", "status", "attempt_count", "response_status", "queued_at")
    list_filter = ("status",)
    readonly_fields = ("webhook", "event", "uid", "attempt_count", "next_attempt_at", "response_status", "status",
                       "error")
