"""The fleet lists' filters, one FilterSet per list for its browser page and its API endpoint; newest first."""

from __future__ import annotations

from django import forms

from console.constants import JobStatus
from console.filters import AnyTextFilter, ChoiceTextFilter, ListFilterSet, SearchFilter, moment_filters
from fleet.models import Deployment, DeploymentQuerySet, DeploymentTarget


class HostNameFilter(AnyTextFilter):
    """The deployments that went to the host of this name (as it was called then, so a removed host's deployments
    are still found); a subquery, so that a deployment is listed once."""

    def filter(self, qs: DeploymentQuerySet, value: str) -> DeploymentQuerySet:
        if not value:
            return qs
        if "\x00" in value:
            return qs.none()
        return qs.filter(pk__in=DeploymentTarget.objects.filter(host_name=value).values("deployment_id"))


class DeploymentFilter(ListFilterSet):
    """`q=<text>` (part of the app's name or of the image asked for), `name=<app>` (exactly that app: its release
    history), `status=<status>`, `host=<host name>` and `created_after`/`created_before`; a bad value is a form
    error, a NUL in a text matches nothing."""

    q = SearchFilter(fields=("name", "image"), help_text="Part of the app's name or of the image.")
    status = ChoiceTextFilter(field_name="status", choices=JobStatus.choices)
    host = HostNameFilter(label="Host", help_text="A host's name.")
    name = AnyTextFilter(field_name="name", widget=forms.HiddenInput)
    created_after, created_before = moment_filters("created")

    class Meta:
        model = Deployment
        fields: list[str] = []


