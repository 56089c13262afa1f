"""The audit list's filter, one FilterSet for the audit page and GET /api/v1/audit/."""

from __future__ import annotations

import django_filters

from console.audit.constants import Action
from console.audit.models import AuditEvent


class AuditEventFilter(django_filters.FilterSet):
    """`action=<action>`: only that action; an unknown action is a form error (the API answers it 400)."""

    action = django_filters.ChoiceFilter(choices=Action.choices, empty_label="All actions")

    class Meta:
        model = AuditEvent
        fields: list[str] = []
