"""Pieces the lists' FilterSets share (each app's `filters.py` holds its own FilterSets)."""

from __future__ import annotations

import django_filters
from django import forms
from django.core.validators import ProhibitNullCharactersValidator
from django.db.models import QuerySet


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
