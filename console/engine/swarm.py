"""Swarm mode as an engine reports it: whether it is in a swarm, as a manager or a worker, and (on a manager) the
nodes; setting a node's availability (drain, pause, active) as `docker node update --availability` does."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from console.engine.core import MAX_FACT, Engine, EngineError, EngineNotFound

# Swarm's ids (node, cluster, service) are 25 characters of [a-z0-9] (swarmkit identity.NewID, base 36).
SWARM_ID_RE = re.compile(r"^[a-z0-9]{25}$")
NODE_AVAILABILITIES = ("active", "pause", "drain")
# Info["Swarm"]["LocalNodeState"] of an engine that is a node of a swarm.
ACTIVE = "active"
# How many nodes the console reads of one swarm: a page and an API answer stay bounded.
MAX_NODES = 1000
# `update_node` carries the node's version index: when the node changed in between (another update, a heartbeat
# of its status does not count), swarm refuses with "update out of sequence"; read again and retry this often.
UPDATE_ATTEMPTS = 3


@dataclass(frozen=True)
class SwarmView:
    """What an engine says of swarm mode. `swarm` is the console's record ({id, managers, nodes}) when the engine is
    a manager, else None with `reason` saying why (not in swarm mode, a worker, locked...)."""

    swarm: dict[str, Any] | None
    reason: str


def _text(value: Any, limit: int = MAX_FACT) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _labels(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {_text(key): _text(item) for key, item in list(value.items())[:100] if isinstance(key, str)}


def _address(node: dict[str, Any]) -> str:
    address = _text((node.get("Status") or {}).get("Addr"))
    if address in ("", "0.0.0.0"):  # noqa: S104 (a value read, not an address bound)
        # Some engines report a manager's own status address as 0.0.0.0: its manager address says where it is.
        manager_address = _text((node.get("ManagerStatus") or {}).get("Addr"))
        address = manager_address.rsplit(":", 1)[0] if manager_address else address
    return address


def node_record(node: dict[str, Any]) -> dict[str, Any]:
    """One node of `docker node ls` in the console's field names."""
    spec = node.get("Spec") or {}
    description = node.get("Description") or {}
    manager = node.get("ManagerStatus") or {}
    return {
        "id": _text(node.get("ID")),
        "hostname": _text(description.get("Hostname")),
        "role": _text(spec.get("Role")),
        "availability": _text(spec.get("Availability")),
        "state": _text((node.get("Status") or {}).get("State")),
        "address": _address(node),
        "engine_version": _text((description.get("Engine") or {}).get("EngineVersion")),
        "labels": _labels(spec.get("Labels")),
        "leader": manager.get("Leader") is True,
    }


def read_swarm(engine: Engine) -> SwarmView:
    """The engine's swarm: on a manager the cluster id, manager count and every node; otherwise None and why.
    EngineError when the engine does not answer (or, a manager, refuses to list its nodes)."""
    with engine.errors("Reading swarm mode"):
        info = engine.api.info()
    local = info.get("Swarm") if isinstance(info, dict) else None
    local = local if isinstance(local, dict) else {}
    state = _text(local.get("LocalNodeState"))
    if state in ("", "inactive"):
        return SwarmView(None, "The engine is not in swarm mode.")
    if state != ACTIVE:
        # pending (joining), error, locked (an autolocked manager after a restart, waiting for its unlock key).
        return SwarmView(None, f"The engine's swarm node is {state}: it cannot tell its swarm's nodes.")
    cluster_id = _text((local.get("Cluster") or {}).get("ID"))
    if local.get("ControlAvailable") is not True:
        return SwarmView(None, "The engine is a worker node of a swarm: only a manager lists the nodes; register a "
                               "manager's engine to see and manage them.")
    with engine.errors("Listing the swarm's nodes"):
        nodes = engine.api.nodes()
    records = sorted((node_record(node) for node in (nodes or [])[:MAX_NODES] if isinstance(node, dict)),
                     key=lambda node: (node["role"] != "manager", node["hostname"], node["address"], node["id"]))
    managers = sum(1 for node in records if node["role"] == "manager")
    return SwarmView({"id": cluster_id, "managers": managers, "nodes": records}, "")


def set_node_availability(engine: Engine, node_id: str, availability: str) -> dict[str, Any]:
    """`docker node update --availability`: returns the node as it is afterwards. The caller validated both values
    (SWARM_ID_RE, NODE_AVAILABILITIES). EngineNotFound when the swarm has no such node, EngineError when the engine
    is no manager (any more) or does not answer."""
    if not SWARM_ID_RE.match(node_id) or availability not in NODE_AVAILABILITIES:
        raise ValueError("a node id and an availability were not checked")
    action = f"Setting node {node_id} to {availability}"
    for attempt in range(UPDATE_ATTEMPTS):
        with engine.errors(action):
            node = engine.api.inspect_node(node_id)
        if _text(node.get("ID")) != node_id:
            # inspect_node also takes a unique prefix or a hostname: only the exact id names the node asked for.
            raise EngineNotFound(f"{action}: the swarm has no node {node_id}")
        spec = dict(node.get("Spec") or {})
        spec["Availability"] = availability
        try:
            with engine.errors(action):
                engine.api.update_node(node_id, node["Version"]["Index"], spec)
        except EngineError as exc:
            if "out of sequence" in exc.message and attempt + 1 < UPDATE_ATTEMPTS:
                continue
            raise
        with engine.errors(action):
            return node_record(engine.api.inspect_node(node_id))
    raise AssertionError("unreachable")  # pragma: no cover
