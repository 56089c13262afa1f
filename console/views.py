from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from console import dashboard
from console.engine import Engine, EngineError
from console.health import service_states


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
    engine_info, engine_error = None, None
    try:
        with Engine.for_builds(timeout=settings.HEALTH_TIMEOUT) as engine:
            engine_info = engine.info()
            engine_url = engine.url
    except EngineError as exc:
        engine_error, engine_url = str(exc), settings.DOCKER_HOST or "the local socket"
    context = {
        "counts": dashboard.counts_for(request.user),
        "engine": engine_info,
        "engine_error": engine_error,
        "engine_url": engine_url,
    }
    return render(request, "console/home.html", context)
