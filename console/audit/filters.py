"""The audit list's filter, one FilterSet for the audit page and GET /api/v1/audit/; newest first."""

from __future__ import annotations

import django_filters

from console.audit.constants import Action
from console.audit.models import AuditEvent
from console.filters import ListFilterSet, SearchFilter, moment_filters


class AuditEventFilter(ListFilterSet):
    """`action=<action>` (an unknown action is a form error: the API answers it 400), `q=<text>` (part of the
    object's label or of the account's name) and `created_after`/`created_before` (a date or an ISO 8601 moment)."""

    action = django_filters.ChoiceFilter(choices=Action.choices, empty_label="All actions")
    q = SearchFilter(fields=("target_label", "actor_name"), help_text="Part of the object's or the account's name.")
    created_after, created_before = moment_filters("created", "Logged")

    class Meta:
        model = AuditEvent
        fields: list[str] = []
