from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from console.audit.filters import AuditEventFilter
from console.audit.services import events_for
from console.audit.words import describe
from console.listing import PAGE_SIZE, paginate

__all__ = ["PAGE_SIZE", "event_list"]


@login_required
@require_GET
def event_list(request: HttpRequest) -> HttpResponse:
    listing = paginate(request, AuditEventFilter(request.GET, queryset=events_for(request.user)), noun="event")
    # The page's events in words, linked to their objects (one query per kind of object, not per event).
    context = {"listing": listing, "form": listing.form, "page": listing.page,
               "events": describe(listing.page, request.user)}
    return render(request, "audit/event_list.html", context, status=listing.status)
