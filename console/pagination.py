"""One pagination for every list of the API: `{count, next, previous, results}`, `?page=` and `?page_size=`
(default 50, at most 500), newest first by primary key (`newest_first`, console/filters.py), so that a page
keeps its rows until new ones arrive before it."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination, PageNumberPagination

# The lists' one order, shared with the browser pages' FilterSets.
from console.filters import newest_first as newest_first

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class ConsolePagination(PageNumberPagination):
    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


class _LimitOffset(LimitOffsetPagination):
    default_limit = DEFAULT_PAGE_SIZE
    max_limit = MAX_PAGE_SIZE


class PagesOrLimitOffset(ConsolePagination):
    """Pages, and for a list that had them before pages came (the audit log) `?limit=&offset=` too: a request
    that gives either is answered the old way, in the same `{count, next, previous, results}`."""

    def paginate_queryset(self, queryset, request, view=None):
        if "limit" in request.query_params or "offset" in request.query_params:
            self._limit_offset = _LimitOffset()
            return self._limit_offset.paginate_queryset(queryset, request, view)
        self._limit_offset = None
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data):
        if getattr(self, "_limit_offset", None) is not None:
            return self._limit_offset.get_paginated_response(data)
        return super().get_paginated_response(data)

    def get_schema_operation_parameters(self, view):
        return super().get_schema_operation_parameters(view) + _LimitOffset().get_schema_operation_parameters(view)
