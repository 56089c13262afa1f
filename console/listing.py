"""One way for the browser lists (images, builds, deployments, audit log) to show a filtered queryset: a FilterSet
(the one the API uses), Django's Paginator at PAGE_SIZE rows, the total, and the query string that keeps the
filters on the pager's links. The page is sliced in the database, so a page costs the same queries at any total."""

from __future__ import annotations

from dataclasses import dataclass

import django_filters
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, QueryDict

PAGE_SIZE = 50


@dataclass
class Listing:
    """What a list template needs: the page, its form, whether a filter is given (an empty list then means "no
    match", with a link to clear them), and `query`, the filters as a query string without `page`."""

    page: Page
    form: object
    valid: bool
    filtered: bool
    query: str
    noun: str
    plural: str

    @property
    def count(self) -> int:
        return self.page.paginator.count

    @property
    def count_text(self) -> str:
        return f"{self.count} {self.noun if self.count == 1 else self.plural}"

    @property
    def status(self) -> int:
        """400 when a filter's value is refused (the page shows why and lists nothing), as the API answers it."""
        return 200 if self.valid else 400


def filters_query(params: QueryDict) -> tuple[str, bool]:
    """The request's parameters without `page` (repeated ones such as `label` kept), and whether any filter is
    given."""
    kept = params.copy()
    kept.pop("page", None)
    given = any(value.strip() for _key, values in kept.lists() for value in values)
    return kept.urlencode(), given


def paginate(request: HttpRequest, filterset: django_filters.FilterSet, queryset: QuerySet | None = None,
             noun: str = "row", plural: str | None = None) -> Listing:
    """Filter `queryset` (or the FilterSet's own) with `filterset`, bound to `request.GET`, and take the page that
    `?page=` asks for (a page past the end is the last one; not a number, the first). A refused filter lists
    nothing; the form carries the errors."""
    valid = filterset.is_valid()
    if queryset is None:
        found = filterset.qs if valid else filterset.queryset.none()
    else:
        found = filterset.filter_queryset(queryset) if valid else queryset.none()
    query, filtered = filters_query(request.GET)
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    return Listing(page=page, form=filterset.form, valid=valid, filtered=filtered, query=query, noun=noun,
                   plural=plural or f"{noun}s")
