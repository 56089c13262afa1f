from __future__ import annotations

from django import forms

from console.audit.constants import Action


class AuditFilterForm(forms.Form):
    """The one filter definition of the audit page and GET /api/v1/audit/."""

    action = forms.ChoiceField(choices=[("", "All actions"), *Action.choices], required=False)
