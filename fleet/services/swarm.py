"""A swarm registered as a host (its manager's engine): the nodes the host check records (fleet/services/hosts.py),
and draining, pausing or activating one of them."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from console.audit.constants import Action
from console.audit.services import record
from console.engine.swarm import NODE_AVAILABILITIES, SWARM_ID_RE
from console.engine.swarm import set_node_availability as engine_set_node_availability
from console.errors import Conflict
from fleet.constants import CHECK_TIMEOUT_SECONDS
from fleet.models import Host
from fleet.services.hosts import check_host


def clean_node_id(value: Any) -> str:
    """A node id as a user sent it: exactly Swarm's form (25 of [a-z0-9]), never a prefix or a hostname, which the
    engine would also resolve and which several nodes may share (nodes in namespaces share the machine's name)."""
    if not isinstance(value, str) or not SWARM_ID_RE.match(value):
        raise ValidationError({"node_id": "A node id is the 25 lowercase letters and digits `docker node ls` shows "
                                          "in full."})
    return value


def clean_availability(value: Any) -> str:
    if value not in NODE_AVAILABILITIES:
        raise ValidationError({"availability": f"Availability is one of {', '.join(NODE_AVAILABILITIES)}."})
    return value


def node_rows(host: Host) -> list[dict[str, Any]]:
    """The recorded nodes as the host page lists them, each with its labels as one text ("zone=a, ssd=yes")."""
    nodes = (host.swarm or {}).get("nodes") or []
    return [{**node, "label_text": ", ".join(f"{key}={value}" for key, value in sorted(node["labels"].items()))}
            for node in nodes]


def set_node_availability(host: Host, node_id: Any, availability: Any) -> dict[str, Any]:
    """Drain, pause or activate one node of the swarm `host` manages, then check the host again so that its
    recorded nodes say so; returns the node as the engine has it now. Nothing is recorded when the engine refuses:
    a node the swarm does not have is a 404, an engine that is no manager (now or at the last check) a 409, an
    engine that does not answer a 503/502."""
    node_id, availability = clean_node_id(node_id), clean_availability(availability)
    if host.swarm is None:
        raise Conflict(f"{host.name} is not a swarm manager as of its last check"
                       f"{': ' + host.swarm_reason if host.swarm_reason else ''}. Check it again, or register a "
                       "manager's engine.")
    with host.engine(timeout=CHECK_TIMEOUT_SECONDS) as engine:
        node = engine_set_node_availability(engine, node_id, availability)
    record(host.owner, Action.NODE_AVAILABILITY_SET, target=host,
           detail={"node": node_id, "hostname": node["hostname"], "availability": availability})
    check_host(host)
    return node
