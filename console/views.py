from __future__ import annotations

import logging

from django.apps import apps
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, InterfaceError, OperationalError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from console.constants import JobStatus
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


def _dashboard_facts(user) -> tuple[list[dict], list[dict]]:
    """What the user has (each count linking to its list) and the first steps (upload, build, push, deploy), each
    done once the user has done it. One query per model, whatever the user has. The console sits below the apps
    (pyproject.toml's layers), so it names their models instead of importing them."""
    model = apps.get_model
    total = Count("pk")
    succeeded = Count("pk", filter=Q(status=JobStatus.SUCCEEDED))
    repositories = model("builds.Repository").objects.for_user(user).count()
    sources = model("builds.Source").objects.for_user(user).count()
    builds = model("builds.Build").objects.for_user(user).aggregate(total=total, succeeded=succeeded)
    images = model("builds.Image").objects.for_user(user).count()
    # The console's own registry is every user's, listed on the registries page from the first visit (it is made
    # then, registry.services.accounts_for): counted here before that visit too.
    accounts = model("registry.RegistryAccount").objects.filter(owner=user).aggregate(
        total=total, console=Count("pk", filter=Q(kind="console")))
    registries = accounts["total"] + (0 if accounts["console"] else 1)
    pushed = model("registry.Push").objects.filter(owner=user, status=JobStatus.SUCCEEDED).exists()
    hosts = model("fleet.Host").objects.for_user(user).count()
    deployments = model("fleet.Deployment").objects.for_user(user).aggregate(total=total, succeeded=succeeded)
    counts = [
        {"label": "Repositories", "count": repositories, "url": reverse("builds:repository-list")},
        {"label": "Builds", "count": builds["total"], "url": reverse("builds:build-list")},
        {"label": "Images", "count": images, "url": reverse("builds:image-list")},
        {"label": "Registries", "count": registries, "url": reverse("registry:registry-list")},
        {"label": "Hosts", "count": hosts, "url": reverse("fleet:host-list")},
        {"label": "Deployments", "count": deployments["total"], "url": reverse("fleet:deployment-list")},
    ]
    steps = [
        {"name": "upload", "title": "Upload a source", "done": sources > 0,
         "text": "Make a repository, then upload an archive or a folder with a Dockerfile (or import it from git).",
         "url": reverse("builds:repository-list" if repositories else "builds:repository-create"),
         "action": "Your repositories" if repositories else "New repository"},
        {"name": "build", "title": "Build an image", "done": builds["succeeded"] > 0,
         "text": "On a source's page, start a build: its log follows it, and a succeeded build makes an image.",
         "url": reverse("builds:build-list"), "action": "Your builds"},
        {"name": "push", "title": "Push it to a registry", "done": pushed,
         "text": "Push the image to the console's registry (yours from the start) or one you add.",
         "url": reverse("registry:push-create"), "action": "Push an image"},
        {"name": "deploy", "title": "Deploy it", "done": deployments["succeeded"] > 0,
         "text": "Add a Docker host, then deploy the image to it and follow its release.",
         "url": reverse("fleet:deployment-create" if hosts else "fleet:host-list"),
         "action": "Deploy an image" if hosts else "Add a host"},
    ]
    return counts, steps


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    engine_info, engine_error, engine_url = engine_overview()
    counts, steps = _dashboard_facts(request.user)
    context = {
        "counts": counts,
        "steps": steps,
        # Shown until every step is done once: a newcomer's map, out of the way afterwards.
        "show_steps": not all(step["done"] for step in steps),
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
            response = render(request, "503.html", context, status=503)
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


# The console's own error pages (console/urls.py handler404/403/500). Under /api/ an error stays JSON in the API's
# shape ({"detail": ...}), for clients that parse it; elsewhere a page with the navigation and a way back.
NOT_FOUND = "Not found."
FORBIDDEN = "You do not have permission to do that."
SERVER_ERROR = "The console failed to answer this request; the error is logged."


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": NOT_FOUND}, status=404)
    # Nothing of the exception is shown: Django's message names the URL patterns it tried.
    return render(request, "404.html", status=404)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": FORBIDDEN}, status=403)
    return render(request, "403.html", status=403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form refused by the CSRF check (settings.CSRF_FAILURE_VIEW): the console's 403, not Django's page."""
    return permission_denied(request)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": SERVER_ERROR}, status=500)
    # Whatever failed may be the database or the session: no request context (no user lookup, no messages, no
    # CSRF token), so the page renders from the template alone. The navigation shows its signed-out form.
    body = loader.get_template("500.html").render({"user": AnonymousUser(), "messages": []})
    return HttpResponse(body, status=500)
