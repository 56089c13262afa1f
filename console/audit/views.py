from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from console.audit.filters import AuditEventFilter
from console.audit.services import events_for

PAGE_SIZE = 50


@login_required
@require_GET
def event_list(request: HttpRequest) -> HttpResponse:
    search = AuditEventFilter(request.GET, queryset=events_for(request.user))
    action = search.form.cleaned_data["action"] if search.is_valid() else ""
    # An unknown action lists every event, as before: the invalid field filters nothing.
    page = Paginator(search.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "audit/event_list.html", {"form": search.form, "page": page, "action": action})
