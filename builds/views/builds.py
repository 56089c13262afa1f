"""Browser pages for builds: the form, the live build page, cancel, rebuild and debugging a failed step."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from builds.filters import BuildFilter
from builds.forms import BuildForm, DebugForm
from builds.models import Build, Source
from builds.services import builds as buildservice
from builds.services import compare
from builds.services.checks import check_source
from builds.services.options import OptionError
from console import jobs
from console.constants import JobStatus
from console.errors import DomainError, run_form
from console.listing import paginate


def _get_source_for_user(request: HttpRequest, pk: int) -> Source:
    return get_object_or_404(Source.objects.for_user(request.user).select_related("repository"), pk=pk)


def _get_build_for_user(request: HttpRequest, pk: int) -> Build:
    return get_object_or_404(Build.objects.for_user(request.user).select_related("repository", "source"), pk=pk)


@login_required
@require_GET
def build_list(request: HttpRequest) -> HttpResponse:
    found = Build.objects.for_user(request.user).select_related("repository")
    listing = paginate(request, BuildFilter(request.GET, queryset=found), noun="build")
    context = {"listing": listing, "builds": listing.page, "form": listing.form}
    return render(request, "builds/build_list.html", context, status=listing.status)


@login_required
@require_http_methods(["GET", "POST"])
def build_create(request: HttpRequest, pk: int) -> HttpResponse:
    source = _get_source_for_user(request, pk)
    form = BuildForm(request.POST or None, initial={"dockerfile": request.GET.get("dockerfile", "Dockerfile"),
                                                    "path": request.GET.get("path", ".")})
    if build := run_form(request, form, lambda data: buildservice.trigger_build(request.user, source,
                                                                              form.options())):
        return redirect("builds:build-detail", pk=build.pk)
    dockerfile = (form.data.get("dockerfile") if form.is_bound else form.initial["dockerfile"]) or "Dockerfile"
    path = (form.data.get("path") if form.is_bound else form.initial["path"]) or "."
    context = {"source": source, "repository": source.repository, "form": form,
               "checks": check_source(source, dockerfile, path)}
    return render(request, "builds/build_form.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
def build_detail(request: HttpRequest, pk: int) -> HttpResponse:
    build = _get_build_for_user(request, pk)
    context = {
        "build": build,
        "steps": build.steps.all(),
        "lines": jobs.read_log(build, 0).lines,
        "queue_position": buildservice.queue_position(build),
        "checks": check_source(build.source, build.dockerfile, build.path),
        "debug_form": DebugForm(),
        "image": build.images.first(),
        "previous_image": compare.previous_build_image(build) if build.status == JobStatus.SUCCEEDED else None,
    }
    return render(request, "builds/build_detail.html", context)


@login_required
@require_POST
def build_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    build = _get_build_for_user(request, pk)
    if buildservice.cancel_build(build):
        messages.success(request, "Cancelling the build.")
    else:
        messages.warning(request, f"The build is {build.status} already.")
    return redirect("builds:build-detail", pk=build.pk)


@login_required
@require_POST
def build_rebuild(request: HttpRequest, pk: int) -> HttpResponse:
    build = _get_build_for_user(request, pk)
    try:
        new = buildservice.rebuild(build)
    except OptionError as exc:
        messages.error(request, f"Cannot rebuild: {exc}")
        return redirect("builds:build-detail", pk=build.pk)
    return redirect("builds:build-detail", pk=new.pk)


@login_required
@require_POST
def build_debug(request: HttpRequest, pk: int) -> HttpResponse:
    build = _get_build_for_user(request, pk)
    form = DebugForm(request.POST)
    result, error, code = None, None, 400
    if form.is_valid():
        try:
            result = buildservice.debug_in_last_good_layer(build, form.cleaned_data["command"])
            code = 200
        except buildservice.DebugLimitReached as exc:
            error, code = str(exc), 429
        except DomainError as exc:  # BuildNotDebuggable, or what the engine said
            error = str(exc)
    context = {"build": build, "form": form, "result": result, "error": error}
    return render(request, "builds/build_debug.html", context, status=code)
