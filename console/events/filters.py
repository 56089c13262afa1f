"""The events list's filter, one FilterSet for the events page and GET /api/v1/events/; newest first."""

from __future__ import annotations

import django_filters

from console.events.constants import EventKind
from console.events.models import Event
from console.filters import ListFilterSet, SearchFilter, moment_filters


class EventFilter(ListFilterSet):
    """`kind=<kind>` (an unknown kind is a 400), `q=<text>` (part of the repository) and
    `created_after`/`created_before`."""

    kind = django_filters.ChoiceFilter(choices=EventKind.choices, empty_label="All events")
    q = SearchFilter(fields=("repository",), help_text="Part of the repository's name.")
    created_after, created_before = moment_filters("created", "Happened")

    class Meta:
        model = Event
        fields: list[str] = []
