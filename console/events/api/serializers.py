from __future__ import annotations

from rest_framework import serializers

from console.events.constants import EventKind
from console.events.models import Delivery, DeliveryAttempt, Event, Webhook


class EventSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=EventKind.choices, read_only=True)

    class Meta:
        model = Event
        fields = ["id", "kind", "repository", "data", "created"]
        read_only_fields = fields


class WebhookSerializer(serializers.ModelSerializer):
    """`secret` is write-only: required to create, optional to change, never answered."""

    events = serializers.ListField(child=serializers.CharField(max_length=60), allow_empty=False, max_length=20)
    secret = serializers.CharField(write_only=True, max_length=256, trim_whitespace=False,
                                   help_text="Signs every delivery (X-Console-Signature); stored encrypted.")
    repository = serializers.CharField(max_length=255, required=False, allow_blank=True,
                                       help_text="Only events about this repository (blank: all of yours).")
    url = serializers.CharField(max_length=2000)

    class Meta:
        model = Webhook
        fields = ["id", "url", "events", "repository", "secret", "active", "created"]
        read_only_fields = ["id", "created"]


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "started_at", "status_code", "error", "duration_ms"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    event = EventSerializer(read_only=True)
    attempts = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = ["id", "uid", "status", "event", "attempt_count", "next_attempt_at", "response_status", "error",
                  "queued_at", "finished_at", "redelivery_of", "attempts"]
        read_only_fields = fields
