"""What a user does to a swarm app's service besides deploying it: scale it and remove it.

A scale is a release like any deployment (a row on the job framework, with its lifecycle and log): the app's
current release again, with the same pinned image digest and settings but another replica count; its run
(swarm_deployer.scale_service) changes only the service's replica count, so Swarm starts or stops tasks and rolls
none. A removal is done at once, on the manager, like a node's drain: the engine first, then the record, so that
nothing is written when the manager does not answer."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from console.audit.constants import Action
from console.audit.services import record
from console.constants import ACTIVE_STATUSES
from console.engine import swarm as engine_swarm
from console.errors import Conflict, DomainError
from fleet.constants import CHECK_TIMEOUT_SECONDS, LABEL_CONSOLE, LABEL_NAME, LABEL_OWNER, MAX_SCALE_REPLICAS
from fleet.instance import console_mark
from fleet.models import Deployment, DeploymentTarget, Host
from fleet.services.deployments import create_deployment, current_release, service_name, settings_of


def service_is_ours(service: dict[str, Any], owner_id: int, name: str) -> bool:
    """Whether this console made `service` (as the engine answers it) for app `name` of that owner: its labels
    say so. Whatever its name, the console changes or removes no other service."""
    labels = (service.get("Spec") or {}).get("Labels") or {}
    return (labels.get(LABEL_CONSOLE), labels.get(LABEL_OWNER), labels.get(LABEL_NAME)) == (
        console_mark(), str(owner_id), name)


def clean_replicas(value: Any) -> int:
    """A scale's replica count: a whole number from 0 (the service stays, no task runs) to MAX_SCALE_REPLICAS."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SCALE_REPLICAS:
        raise ValidationError({"replicas": f"replicas is a whole number from 0 to {MAX_SCALE_REPLICAS}."})
    return value


def _swarm_target(deployment: Deployment, doing: str) -> tuple[DeploymentTarget, Host]:
    """The deployment's one target on a swarm manager, and that host; refusals say why there is none."""
    if deployment.swarm is None:
        raise DomainError(f"#{deployment.display_number} of {deployment.name} went to hosts, not to a swarm: only a "
                          f"swarm service can {doing}.")
    target = next(iter(deployment.targets.all()), None)
    if target is None or target.host_id is None:
        raise Conflict(f"The swarm host of #{deployment.display_number} was removed from the console.")
    return target, Host.objects.get(pk=target.host_id)


def _refuse_busy(deployment: Deployment) -> None:
    busy = Deployment.objects.filter(owner=deployment.owner, name=deployment.name, status__in=ACTIVE_STATUSES).first()
    if busy is not None:
        raise Conflict(f"{deployment.name} is being deployed right now (#{busy.display_number}); wait for it.")


def _removed(target: DeploymentTarget) -> bool:
    return bool(target.service and target.service.get("removed"))


def _capacity(deployment: Deployment, host: Host) -> tuple[int, str] | None:
    """How many replicas the swarm's available nodes (as of the host's last check) hold at most, and why, when the
    service's settings bound it: a port published in host mode is free once per node; max_replicas_per_node."""
    nodes = sum(1 for node in (host.swarm or {}).get("nodes") or []
                if node.get("availability") == "active" and node.get("state") == "ready")
    if not nodes:
        # No node recorded as available: the console cannot tell; Swarm will (the scale's run says what it said).
        return None
    if deployment.ports:
        port = next(iter(deployment.ports.values()))
        return nodes, f"each node publishes port {port} once (host mode), and {host.name} has {nodes} available node(s)"
    per_node = ((deployment.swarm or {}).get("placement") or {}).get("max_replicas_per_node")
    if per_node:
        return nodes * per_node, (f"each node runs at most {per_node} (max_replicas_per_node), and {host.name} has "
                                  f"{nodes} available node(s)")
    return None


def page_actions(deployment: Deployment, current: Deployment | None) -> dict[str, Any] | None:
    """What the deployment page offers for the app's service: on the current release of a swarm app, a scale form
    (replicated services) and the removal, or that the service was removed; None elsewhere."""
    if deployment.swarm is None or current is None or current.pk != deployment.pk:
        return None
    target = next(iter(deployment.targets.all()), None)
    if target is None or target.host_id is None:
        return None
    return {"service": service_name(deployment.owner_id, deployment.name), "host": target.host_name,
            "removed": _removed(target), "removed_at": (target.service or {}).get("removed_at", ""),
            "scalable": deployment.swarm.get("mode") != "global", "replicas": deployment.swarm.get("replicas"),
            "max_replicas": MAX_SCALE_REPLICAS}


def scale(deployment: Deployment, replicas: Any) -> Deployment:
    """Scale the app's service to `replicas`: a new release of the app (`scale_of` the current one) with the same
    digest and settings but that replica count, queued like any deployment. Refused (4xx, nothing recorded) for a
    deployment to hosts, a global service, a release that is not the app's current one, a count out of range or
    more than the swarm's nodes can hold, an app being deployed, and a service the swarm no longer has (asked of the
    manager now: an engine that does not answer is a 503)."""
    replicas = clean_replicas(replicas)
    target, host = _swarm_target(deployment, "scale")
    if deployment.swarm.get("mode") == "global":
        raise DomainError(f"{deployment.name} is a global service: it runs one task on every node and does not "
                          "scale; deploy it as replicated to choose a count.")
    current = current_release(deployment.owner, deployment.name)
    if current is None or current.pk != deployment.pk:
        now = f" (#{current.display_number} is)" if current is not None else " (it has none)"
        raise Conflict(f"#{deployment.display_number} is not the current release of {deployment.name}{now}: scale "
                       "the release that runs.")
    if _removed(target):
        raise Conflict(f"The service of {deployment.name} was removed: deploy the app again to run it.")
    bound = _capacity(deployment, host)
    if bound is not None and replicas > bound[0]:
        raise ValidationError({"replicas": f"{replicas} replicas do not fit: {bound[1]} as of its last check; at "
                                           f"most {bound[0]}."})
    _refuse_busy(deployment)
    name = service_name(deployment.owner_id, deployment.name)
    with host.engine(timeout=CHECK_TIMEOUT_SECONDS) as engine:
        service = engine_swarm.find_service(engine, name)
    if service is None or not service_is_ours(service, deployment.owner_id, deployment.name):
        raise Conflict(f"The swarm no longer has the service {name} this console deployed for {deployment.name} "
                       "(removed outside the console?): deploy the app again.")
    data = {**settings_of(deployment), "hosts": [host.pk], "selector": "", "image": deployment.image,
            "image_digest": deployment.image_digest, "replicas": replicas}
    return create_deployment(deployment.owner, data, scale_of=deployment)


def remove_service(deployment: Deployment) -> Deployment:
    """Remove the app's Swarm service (`docker service rm`: its tasks stop on every node), when this console made
    it for the deployment's owner and app (its labels say so), then record it: an audit event, and the targets that
    showed that service say it was removed. Refused (nothing removed or recorded) for a deployment to hosts, an app
    being deployed, a service the swarm does not have or did not get from this console; an engine that does not
    answer is a 503 with nothing written."""
    target, host = _swarm_target(deployment, "be removed")
    _refuse_busy(deployment)
    name = service_name(deployment.owner_id, deployment.name)
    with host.engine(timeout=CHECK_TIMEOUT_SECONDS) as engine:
        service = engine_swarm.find_service(engine, name)
        if service is None:
            raise Conflict(f"The swarm has no service {name}: nothing to remove.")
        if not service_is_ours(service, deployment.owner_id, deployment.name):
            raise Conflict(f"The swarm's service {name} was not deployed by this console as your app "
                           f"{deployment.name}: it is left alone.")
        engine_swarm.remove_service(engine, service["ID"])
    removed_at = timezone.now().isoformat()
    with transaction.atomic():
        shown = DeploymentTarget.objects.filter(deployment__owner=deployment.owner, deployment__name=deployment.name,
                                                host=host, service__isnull=False)
        for each in shown:
            if each.service.get("id") == service["ID"] and not each.service.get("removed"):
                DeploymentTarget.objects.filter(pk=each.pk).update(
                    service={**each.service, "removed": True, "removed_at": removed_at}, url="")
        record(deployment.owner, Action.SERVICE_REMOVED, target=deployment,
               detail={"name": deployment.name, "hosts": [host.name], "service": name, "service_id": service["ID"]})
    deployment.refresh_from_db()
    return deployment
