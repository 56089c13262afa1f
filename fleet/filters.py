"""The fleet lists' filters, one FilterSet per list for its browser page and its API endpoint."""

from __future__ import annotations

import django_filters

from console.filters import AnyTextFilter
from fleet.models import Deployment


class DeploymentFilter(django_filters.FilterSet):
    """`name=<app>`: only that app's deployments (its release history); a name with a NUL matches nothing."""

    name = AnyTextFilter(field_name="name")

    class Meta:
        model = Deployment
        fields: list[str] = []
