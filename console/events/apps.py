from __future__ import annotations

from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "console.events"
    label = "events"
    verbose_name = "Events and webhooks"
    default_auto_field = "django.db.models.BigAutoField"
