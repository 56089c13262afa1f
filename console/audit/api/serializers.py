from __future__ import annotations

from rest_framework import serializers

from console.audit.models import AuditEvent
from console.audit.words import summary


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name", read_only=True, help_text="The account's username.")
    target = serializers.SerializerMethodField()
    summary = serializers.SerializerMethodField(
        help_text='The event in words, as the audit page says it: "alice started build #12 of shop (shop:1)". '
                  "For people to read; parse action, target and detail instead.")

    class Meta:
        model = AuditEvent
        fields = ["id", "created", "actor", "action", "summary", "target", "detail", "address"]
        read_only_fields = fields

    def get_target(self, event: AuditEvent) -> dict[str, str]:
        return {"type": event.target_type, "id": event.target_id, "label": event.target_label}

    def get_summary(self, event: AuditEvent) -> str:
        return summary(event)
