from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console import jobs
from console.errors import DomainError, NotFound, run_form
from console.listing import paginate
from fleet import services
from fleet.filters import DeploymentFilter
from fleet.forms import DeployForm, HostForm, rows
from fleet.models import Deployment, Host


def _get_host_for_user(request: HttpRequest, pk: int) -> Host:
    return get_object_or_404(Host.objects.for_user(request.user), pk=pk)


def _get_deployment_for_user(request: HttpRequest, pk: int) -> Deployment:
    return get_object_or_404(Deployment.objects.for_user(request.user).prefetch_related("targets"), pk=pk)


def _refusal_text(error: DomainError | ValidationError) -> str:
    """What a page shows for a refusal it does not put on a form (an engine that did not answer, a bad tail)."""
    return "; ".join(error.messages) if isinstance(error, ValidationError) else error.message


@login_required
@require_http_methods(["GET", "POST"])
def hosts(request: HttpRequest) -> HttpResponse:
    form = HostForm(request.POST or None)
    if host := run_form(request, form, lambda data: services.create_host(request.user, data)):
        messages.success(request, f"Host {host.name} was added; it is being checked.")
        return redirect("fleet:host-detail", host.pk)
    return render(request, "fleet/host_list.html", {"hosts": Host.objects.for_user(request.user), "form": form})


@login_required
@require_GET
def host(request: HttpRequest, pk: int) -> HttpResponse:
    host = _get_host_for_user(request, pk)
    context: dict = {"host": host, "containers": [], "engine_error": ""}
    try:
        context["containers"] = services.list_containers(host, request.user)
        if request.GET.get("logs"):
            context["logs_of"] = request.GET["logs"]
            context["logs"] = services.container_logs(host, request.user, request.GET["logs"],
                                                      services.clean_tail(request.GET.get("tail")))
    except (DomainError, ValidationError) as exc:
        context["engine_error"] = _refusal_text(exc)
    return render(request, "fleet/host_detail.html", context)


@login_required
@require_POST
def host_check(request: HttpRequest, pk: int) -> HttpResponse:
    host = services.check_host(_get_host_for_user(request, pk))
    if host.status == "up":
        messages.success(request, f"{host.name} is up.")
    else:
        messages.error(request, f"{host.name} is down: {host.status_reason}")
    return redirect("fleet:host-detail", host.pk)


@login_required
@require_POST
def host_delete(request: HttpRequest, pk: int) -> HttpResponse:
    host = _get_host_for_user(request, pk)
    services.delete_host(host)
    messages.success(request, f"Host {host.name} was removed from the console (its containers keep running).")
    return redirect("fleet:host-list")


@login_required
@require_POST
def container_action(request: HttpRequest, pk: int, cid: str, action: str) -> HttpResponse:
    host = _get_host_for_user(request, pk)
    try:
        services.container_action(host, request.user, cid, action)
    except NotFound as exc:
        # Missing, or another user's on a shared engine: the same 404, which confirms nothing.
        raise Http404(exc.message) from exc
    except (DomainError, ValidationError) as exc:
        messages.error(request, _refusal_text(exc))
    else:
        messages.success(request, f"Container {cid[:12]}: {action} done.")
    return redirect("fleet:host-detail", host.pk)


@login_required
@require_GET
def deployments(request: HttpRequest) -> HttpResponse:
    found = Deployment.objects.for_user(request.user).prefetch_related("targets")
    listing = paginate(request, DeploymentFilter(request.GET, queryset=found), noun="deployment")
    context = {"listing": listing, "deployments": listing.page, "form": listing.form}
    return render(request, "fleet/deployment_list.html", context, status=listing.status)


@login_required
@require_http_methods(["GET", "POST"])
def deploy(request: HttpRequest) -> HttpResponse:
    form = DeployForm(request.user, request.POST or None)

    def create(data: dict) -> Deployment:
        data = {**data, "hosts": [host.pk for host in data["hosts"]],
                "ports": rows(request.POST, "port_container", "port_host"),
                "env": rows(request.POST, "env_key", "env_value")}
        return services.create_deployment(request.user, data)

    if deployment := run_form(request, form, create):
        return redirect("fleet:deployment-detail", deployment.pk)
    context = {
        "form": form,
        "port_rows": rows(request.POST, "port_container", "port_host") or [("8080/tcp", "8080")],
        "env_rows": rows(request.POST, "env_key", "env_value") or [("", "")],
    }
    return render(request, "fleet/deployment_form.html", context)


@login_required
@require_GET
def deployment(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = _get_deployment_for_user(request, pk)
    context = {
        "deployment": deployment,
        "log": jobs.read_log(deployment).lines,
        "releases": Deployment.objects.releases(request.user, deployment.name)[:20],
        "previous": services.previous_release(deployment),
    }
    return render(request, "fleet/deployment_detail.html", context)


@login_required
@require_POST
def deployment_rollback(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = _get_deployment_for_user(request, pk)
    try:
        rollback = services.rollback(deployment)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("fleet:deployment-detail", deployment.pk)
    messages.success(request, f"Rolling {deployment.name} back to release #{rollback.rollback_of_id}.")
    return redirect("fleet:deployment-detail", rollback.pk)
