from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from builds.models import Image
from console import jobs
from console.errors import DomainError, NotFound, run_form
from console.listing import paginate
from fleet import services
from fleet.filters import DeploymentFilter
from fleet.forms import SWARM_INPUTS, DeployForm, HostForm, rows, swarm_initial
from fleet.models import Deployment, Host
from fleet.services import deployments as deployment_service
from fleet.services import follow, swarm_apps
from fleet.services.timeline import service_timeline
from registry.forms import image_app_name


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
    context: dict = {"host": host, "containers": [], "engine_error": "", "swarm_nodes": services.node_rows(host)}
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
def node_availability(request: HttpRequest, pk: int, node_id: str) -> HttpResponse:
    host = _get_host_for_user(request, pk)
    try:
        node = services.set_node_availability(host, node_id, request.POST.get("availability"))
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except (DomainError, ValidationError) as exc:
        messages.error(request, _refusal_text(exc))
    else:
        messages.success(request, f"Node {node['hostname'] or node['id']} ({node['id'][:12]}) is now "
                                  f"{node['availability']}.")
    return redirect("fleet:host-detail", host.pk)


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
    found = Deployment.objects.for_user(request.user).select_related("rollback_of").prefetch_related("targets")
    listing = paginate(request, DeploymentFilter(request.GET, queryset=found), noun="deployment")
    context = {"listing": listing, "deployments": listing.page, "form": listing.form}
    return render(request, "fleet/deployment_list.html", context, status=listing.status)


def _deploy_start(request: HttpRequest) -> dict:
    """Where the deploy form starts: blank, from one of the user's images (`?image=<record number>`, the image
    and the build pages' Deploy: that image picked, the app named after it) or from an earlier deployment
    (`?from=<id>`, its Redeploy: its image and settings, to change before deploying again)."""
    start: dict = {"initial": {}, "port_rows": [("", "")], "env_rows": [("", "")], "port_hint": "8080/tcp"}
    chosen, earlier_pk = request.GET.get("image", "").strip(), request.GET.get("from", "").strip()
    image = None
    if earlier_pk.isdigit():
        earlier = Deployment.objects.for_user(request.user).prefetch_related("targets").filter(pk=int(earlier_pk))
        if earlier := earlier.first():
            data = deployment_service.settings_of(earlier)
            start["initial"] = {
                "name": data["name"], "hosts": data["hosts"], "selector": data["selector"],
                "restart_policy": data["restart_policy"], "user": data["user"],
                "memory_limit": str(data["memory_limit"] or ""), "cpus": str(data["cpus"] or ""),
                "image": earlier.image, "registry": data["registry"], **swarm_initial(earlier.swarm),
                "follow_tag": data["follow_tag"], "follow_approval": data["follow_approval"],
            }
            start["port_rows"] = [(port, str(host_port)) for port, host_port in earlier.ports.items()] or [("", "")]
            start["env_rows"] = list(earlier.env.items()) or [("", "")]
            if earlier.image_id and earlier.registry_account_id is None:
                image = Image.objects.for_user(request.user).filter(image_id=earlier.image_id).first()
                if image is not None:
                    start["initial"].update(picked=image.pk, image="")
    elif chosen.isdigit():
        image = Image.objects.for_user(request.user).select_related("repository").filter(pk=int(chosen)).first()
        if image is not None:
            start["initial"] = {"picked": image.pk, "name": image_app_name(image)}
    elif chosen:
        start["initial"] = {"image": chosen}
    if image is not None and image.config.get("exposed_ports"):
        start["port_hint"] = image.config["exposed_ports"][0]
    return start


@login_required
@require_http_methods(["GET", "POST"])
def deploy(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and "again" in request.POST:
        return _deploy_again(request, request.POST["again"])
    start = _deploy_start(request)
    form = DeployForm(request.user, request.POST or None, initial=start["initial"])

    def create(data: dict) -> Deployment:
        data = {**{name: value for name, value in data.items() if name not in SWARM_INPUTS},
                "hosts": [host.pk for host in data["hosts"]],
                "registry": data["registry"].pk if data["registry"] else None,
                "ports": rows(request.POST, "port_container", "port_host"),
                "env": rows(request.POST, "env_key", "env_value"), **form.swarm_settings()}
        return services.create_deployment(request.user, data)

    if deployment := run_form(request, form, create):
        return redirect("fleet:deployment-detail", deployment.pk)
    context = {
        "form": form, "port_hint": start["port_hint"],
        # A form sent back keeps its rows, with one blank row to add to; no host port is ever filled in for the
        # user (a placeholder shows the usual one): a port published by accident is a port open on the host.
        "port_rows": rows(request.POST, "port_container", "port_host") or start["port_rows"],
        "env_rows": rows(request.POST, "env_key", "env_value") or start["env_rows"],
    }
    return render(request, "fleet/deployment_form.html", context)


def _deploy_again(request: HttpRequest, pk: str) -> HttpResponse:
    """The deployment page's Retry: the same image and settings deployed again at once (redeploy)."""
    if not pk.isdigit():
        raise Http404("No such deployment.")
    earlier = _get_deployment_for_user(request, int(pk))
    return _start_from(request, earlier, deployment_service.redeploy,
                       lambda again: f"Deploying {earlier.name} again (as #{again.display_number}).")


def _start_from(request: HttpRequest, earlier: Deployment, start, said) -> HttpResponse:
    """Start a deployment from `earlier` (a retry, a rollback) and open it, saying `said(new)`; a refusal is said on
    the earlier one's page."""
    try:
        started = start(earlier)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("fleet:deployment-detail", earlier.pk)
    messages.success(request, said(started))
    return redirect("fleet:deployment-detail", started.pk)


@login_required
@require_GET
def deployment(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = _get_deployment_for_user(request, pk)
    current = deployment_service.current_release(request.user, deployment.name)
    releases = list(Deployment.objects.releases(request.user, deployment.name).prefetch_related("targets")[:20])
    errors = deployment_service.grouped_errors(deployment)
    previous = services.previous_release(deployment)
    names = deployment_service.names_of([*releases, deployment])
    context = {
        "deployment": deployment,
        "label": deployment_service.release_label(deployment, names),
        "log": jobs.read_log(deployment).lines,
        "releases": [{"release": release, "label": deployment_service.release_label(release, names),
                      "current": current is not None and release.pk == current.pk} for release in releases],
        "current": current,
        "current_label": deployment_service.release_label(current, names) if current else "",
        "previous": previous,
        "previous_label": deployment_service.release_label(previous, names) if previous else "",
        "errors": errors,
        "pending": list(follow.pending_for_user(request.user).filter(name=deployment.name)[:10]),
        # The deployment's own error repeats its hosts' ("2 of 2 host(s) failed: a: x; b: x"): said once, above.
        "own_error": "" if errors else deployment.error,
        "timelines": service_timeline(deployment),
        "service_actions": swarm_apps.page_actions(deployment, current),
    }
    return render(request, "fleet/deployment_detail.html", context)


@login_required
@require_GET
def deployment_timeline(request: HttpRequest, pk: int) -> HttpResponse:
    """The swarm service's task timeline alone, as the deployment page draws it: its script asks for it every
    second while the deployment runs."""
    deployment = _get_deployment_for_user(request, pk)
    context = {"deployment": deployment, "timelines": service_timeline(deployment)}
    return render(request, "fleet/service_timeline.html", context)


@login_required
@require_POST
def pending_release_approve(request: HttpRequest, pk: int) -> HttpResponse:
    """Deploy the digest a followed tag was pushed with, as a new release."""
    pending = get_object_or_404(follow.pending_for_user(request.user), pk=pk)
    try:
        release = follow.approve(pending, request.user)
    except (DomainError, ValidationError) as exc:
        messages.error(request, " ".join(exc.messages) if isinstance(exc, ValidationError) else exc.message)
        return redirect("fleet:deployment-detail", pending.deployment_id)
    messages.success(request, f"Deploying {pending.follow_tag} ({pending.digest[:19]}) as #{release.display_number}.")
    return redirect("fleet:deployment-detail", release.pk)


@login_required
@require_POST
def pending_release_decline(request: HttpRequest, pk: int) -> HttpResponse:
    """Keep what runs: the push is not deployed."""
    pending = get_object_or_404(follow.pending_for_user(request.user), pk=pk)
    try:
        follow.decline(pending, request.user, request=request)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Declined: {pending.name} keeps what runs.")
    return redirect("fleet:deployment-detail", pending.deployment_id)


@login_required
@require_POST
def deployment_rollback(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = _get_deployment_for_user(request, pk)
    return _start_from(request, deployment, services.rollback,
                       lambda rollback: f"Rolling {deployment.name} back to release "
                                        f"#{rollback.rollback_of.display_number}.")


# -- a swarm app's service: scale and removal (fleet/services/swarm_apps.py) ---------------------------------------

@login_required
@require_POST
def deployment_scale(request: HttpRequest, pk: int) -> HttpResponse:
    """The page's Scale form: a new release with the replica count asked, opened; a refusal said on this page."""
    deployment = _get_deployment_for_user(request, pk)
    try:
        scaled = swarm_apps.scale(deployment, request.POST.get("replicas", "").strip())
    except (DomainError, ValidationError) as exc:
        messages.error(request, f"Not scaled: {_refusal_text(exc)}")
        return redirect("fleet:deployment-detail", deployment.pk)
    messages.success(request, f"Scaling {deployment.name} to {scaled.swarm['replicas']} replica(s) "
                              f"(as #{scaled.display_number}).")
    return redirect("fleet:deployment-detail", scaled.pk)


@login_required
@require_POST
def deployment_remove_service(request: HttpRequest, pk: int) -> HttpResponse:
    """The page's Remove the service button (confirmed first): the app's Swarm service removed, or why not."""
    deployment = _get_deployment_for_user(request, pk)
    try:
        swarm_apps.remove_service(deployment)
    except (DomainError, ValidationError) as exc:
        messages.error(request, f"Not removed: {_refusal_text(exc)}")
    else:
        messages.success(request, f"The service of {deployment.name} was removed; its tasks stop on every node.")
    return redirect("fleet:deployment-detail", deployment.pk)
