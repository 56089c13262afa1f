"""Pieces the lists' FilterSets share (each app's `filters.py` holds its own FilterSets)."""

from __future__ import annotations

import json
from datetime import UTC

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.db import connections
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast


class AnyTextField(forms.CharField):
    """A text field that takes a NUL too: the lists answer such a filter with nothing, not with a 400."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("strip", False)  # the value as given: " 5" is no id, "ok " no status
        super().__init__(*args, **kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)]


class AnyTextFilter(django_filters.CharFilter):
    """An exact match on a text field; a value with a NUL (which PostgreSQL refuses to compare) matches nothing."""

    field_class = AnyTextField

    def filter(self, qs: QuerySet, value: str) -> QuerySet:
        if value and "\x00" in value:
            return qs.none()
        return super().filter(qs, value)


class IdFilter(django_filters.CharFilter):
    """An id given as text: digits pick that row's id, anything else matches nothing (a 200 with [], as before
    django-filter, not a 400)."""

    field_class = AnyTextField

    def filter(self, qs: QuerySet, value: str) -> QuerySet:
        if not value:
            return qs
        return qs.filter(**{self.field_name: value if value.isdigit() else -1})


# Characters JSON writes between its strings; a search made only of these would match the structure of every row.
JSON_STRUCTURE = frozenset('[]{},: \t\r\n')
MAX_SEARCH_LENGTH = 200
MAX_ID = 2**63 - 1
RELATED_MATCH_LIMIT = 500


def newest_first(queryset: QuerySet) -> QuerySet:
    """The lists' one order, on pages and in the API: newest first by primary key (it grows with each row and never
    changes, where a time such as an image's `recorded` is refreshed by a sync), so a page keeps its rows."""
    return queryset.order_by("-pk")


class ListFilterSet(django_filters.FilterSet):
    """A list's FilterSet: whatever it filters comes out newest first (`newest_first`)."""

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        return newest_first(super().filter_queryset(queryset))


def json_text_needle(text: str, vendor: str) -> str:
    """`text` as it appears inside a JSON string in the database's text of a JSON column: PostgreSQL's jsonb text
    keeps non-ASCII characters, Django writes `\\uXXXX` for them on SQLite; both escape quotes and backslashes, so an
    escaped needle never spans two strings."""
    return json.dumps(text, ensure_ascii=vendor != "postgresql")[1:-1]


def text_search(queryset: QuerySet, text: str, fields: tuple[str, ...] = (), json_fields: tuple[str, ...] = ()
                ) -> QuerySet:
    """Rows where `text` is part of one of `fields` or of a string (a list element, a key or a value) in one of the
    JSON `json_fields`, case-insensitively (ASCII only on SQLite). A NUL, or text made only of JSON's punctuation
    in a JSON-only search, matches nothing."""
    text = text.strip()
    if not text:
        return queryset
    if "\x00" in text:
        return queryset.none()
    vendor = connections[queryset.db].vendor
    match = Q()
    for field in fields:
        match |= _field_match(queryset, field, text)
    if json_fields and not set(text) <= JSON_STRUCTURE:
        needle = json_text_needle(text, vendor)
        for field in json_fields:
            alias = f"_{field}_search_text"
            queryset = queryset.alias(**{alias: Cast(field, TextField())})
            match |= Q(**{f"{alias}__icontains": needle})
    return queryset.filter(match) if match else queryset.none()


def _field_match(queryset: QuerySet, field: str, text: str) -> Q:
    """`field` holds `text`. A related row's field (`repository__name`) is looked up first, on its own: an OR across
    a join makes PostgreSQL read every row of the list, where an OR of the matching ids and an indexed search
    (console/search_indexes.py) reads only what matches. Past RELATED_MATCH_LIMIT related rows, the join."""
    relation, _, related_field = field.partition("__")
    if related_field:
        related = queryset.model._meta.get_field(relation).related_model
        ids = list(related._default_manager.filter(**{f"{related_field}__icontains": text}).order_by()
                   .values_list("pk", flat=True)[:RELATED_MATCH_LIMIT + 1])
        if len(ids) <= RELATED_MATCH_LIMIT:
            return Q(**{f"{relation}__in": ids})
    return Q(**{f"{field}__icontains": text})


class SearchFilter(django_filters.CharFilter):
    """`q=<text>`: see `text_search`; longer than MAX_SEARCH_LENGTH is a form error."""

    field_class = AnyTextField

    def __init__(self, *args, fields: tuple[str, ...] = (), json_fields: tuple[str, ...] = (), **kwargs) -> None:
        kwargs.setdefault("max_length", MAX_SEARCH_LENGTH)
        kwargs.setdefault("label", "Search")
        super().__init__(*args, **kwargs)
        self.search_fields, self.search_json_fields = fields, json_fields

    def filter(self, qs: QuerySet, value: str) -> QuerySet:
        return text_search(qs, value or "", self.search_fields, self.search_json_fields)


class AnyTextChoiceField(AnyTextField):
    """One of `choices` or a form error; a value holding a NUL passes, for the filter to match nothing with it (as
    every text filter does)."""

    def __init__(self, *args, choices=(), **kwargs) -> None:
        self.allowed = [value for value, _label in choices]
        kwargs.setdefault("widget", forms.Select(choices=[("", "Any"), *choices]))
        super().__init__(*args, **kwargs)

    def validate(self, value: str) -> None:
        super().validate(value)
        if value and "\x00" not in value and value not in self.allowed:
            raise ValidationError(f"{value!r} is not one of {', '.join(self.allowed)}.", code="invalid_choice")


class ChoiceTextFilter(AnyTextFilter):
    """An exact match on one of `choices` (anything else a form error); a NUL matches nothing."""

    field_class = AnyTextChoiceField


class PositiveIdField(forms.IntegerField):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class PositiveIdFilter(django_filters.Filter):
    """A row's id: a whole number from 1 (anything else a form error)."""

    field_class = PositiveIdField


class MomentField(forms.DateTimeField):
    """A date (`2026-03-01`, midnight in the console's time zone) or an ISO 8601 moment, as a moment in UTC; one
    the database cannot hold once in UTC (year 1 with a positive offset, say) is a form error, not a 500."""

    widget = forms.DateInput(attrs={"type": "date"})

    def to_python(self, value):
        if isinstance(value, str) and "\x00" in value:
            raise ValidationError("Enter a date like 2026-03-01 or a moment like 2026-03-01T12:00:00Z.",
                                  code="invalid")
        moment = super().to_python(value)
        if moment is not None:
            try:
                # In UTC: PostgreSQL refuses offsets past +-15:59, which ISO 8601 (and Python) allow to +-23:59.
                return moment.astimezone(UTC)
            except OverflowError as exc:
                raise ValidationError("That date is out of range.", code="invalid") from exc
        return moment


class MomentFilter(django_filters.Filter):
    """`<field>__gte` (after) or `<field>__lt` (before) a MomentField's value."""

    field_class = MomentField


def moment_filters(field_name: str, noun: str = "Created") -> tuple[MomentFilter, MomentFilter]:
    """The `created_after` (inclusive) and `created_before` (exclusive) pair over one time field."""
    return (MomentFilter(field_name=field_name, lookup_expr="gte", label=f"{noun} from"),
            MomentFilter(field_name=field_name, lookup_expr="lt", label=f"{noun} before"))
