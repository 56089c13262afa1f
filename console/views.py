from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from console import dashboard
from console.errors import api_body, unique_violation
from console.health import engine_overview, service_states

log = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "The database is not available right now; try again shortly."


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    states = service_states()
    healthy = all(state.ok for state in states.values())
    body = {"status": "ok" if healthy else "unavailable", **{name: s.as_dict() for name, s in states.items()}}
    return JsonResponse(body, status=200 if healthy else 503)


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    engine_info, engine_error, engine_url = engine_overview()
    context = {
        "counts": dashboard.counts_for(request.user),
        "engine": engine_info,
        "engine_error": engine_error,
        "engine_url": engine_url,
    }
    return render(request, "console/dashboard.html", context)


class DatabaseUnavailableMiddleware:
    """A request that finds the database unreachable gets a 503 with a message (JSON under /api/, a page
    elsewhere) instead of a server error and a traceback. The API's own handler (console/api.py) answers the
    same for errors inside its views; this catches the browser's views and what runs before the API's."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, IntegrityError):
            return self._unique_violation(request, exception)
        # Only a lost or refused connection: other database errors are bugs and stay server errors.
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        log.error("Database unavailable while answering %s %s: %s", request.method, request.path, exception)
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": DATABASE_UNAVAILABLE}, status=503)
        else:
            # The page must not touch the database again: no user (the session is there), no messages.
            context = {"message": DATABASE_UNAVAILABLE, "user": AnonymousUser(), "messages": []}
            response = render(request, "console/unavailable.html", context, status=503)
        response["Retry-After"] = "5"
        return response

    @staticmethod
    def _unique_violation(request: HttpRequest, exception: IntegrityError) -> HttpResponse | None:
        """A name two requests took at once (this one lost the race past the service's own check): a 400 saying
        so, not a server error. A view that shows the form again catches it itself (console.errors.FORM_ERRORS)."""
        refusal = unique_violation(exception)
        if refusal is None:
            return None
        if request.path.startswith("/api/"):
            return JsonResponse(api_body(refusal), status=refusal.status)
        return render(request, "console/refused.html", {"message": refusal.message}, status=refusal.status)
