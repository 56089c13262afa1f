"""Swarm mode as an engine reports it: whether it is in a swarm, as a manager or a worker, and (on a manager) the
nodes; setting a node's availability (drain, pause, active) as `docker node update --availability` does."""

from __future__ import annotations

import copy
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


# -- services: what a deployment to a swarm runs ----------------------------------------------------------------

# A service's UpdateStatus.State (moby api/types/swarm/service.go): the update Swarm is doing or did.
UPDATE_COMPLETED = "completed"
UPDATE_PAUSED = "paused"
UPDATE_ROLLBACK_STARTED = "rollback_started"
UPDATE_ROLLBACK_COMPLETED = "rollback_completed"
UPDATE_ROLLBACK_PAUSED = "rollback_paused"
# How many tasks of one service the console reads: a target's record stays bounded.
MAX_TASKS = 200
# What Swarm's update and rollback settings are called in the console (and the API) -> in the engine's API.
UPDATE_FIELDS = {"parallelism": "Parallelism", "delay": "Delay", "failure_action": "FailureAction",
                 "monitor": "Monitor", "max_failure_ratio": "MaxFailureRatio", "order": "Order"}
# The console's durations are seconds; the engine's, nanoseconds.
DURATION_FIELDS = ("delay", "monitor")


@dataclass(frozen=True)
class ServiceSpec:
    """What a deployment asks of a swarm service. `image` is pinned (`repo:tag@sha256:...`); `ports` maps
    "8080/tcp" to the port published in host mode on each node that runs a task (no routing mesh: this kernel,
    and many others, have no IPVS); `update` and `rollback` use the console's names (UPDATE_FIELDS), in seconds."""

    name: str
    image: str
    labels: dict[str, str]
    container_labels: dict[str, str]
    env: dict[str, str]
    ports: dict[str, int]
    global_mode: bool = False
    replicas: int = 1
    constraints: tuple[str, ...] = ()
    max_replicas_per_node: int | None = None
    update: dict[str, Any] | None = None
    rollback: dict[str, Any] | None = None
    restart_condition: str = "any"
    memory_limit: int | None = None
    cpus: float | None = None
    user: str = ""


def _swarm_config(settings: dict[str, Any] | None) -> dict[str, Any] | None:
    if not settings:
        return None
    config = {}
    for key, value in settings.items():
        if key in UPDATE_FIELDS and value is not None:
            config[UPDATE_FIELDS[key]] = int(value * 1e9) if key in DURATION_FIELDS else value
    return config


def _service_body(spec: ServiceSpec) -> dict[str, Any]:
    container = {"Image": spec.image, "Env": [f"{key}={value}" for key, value in spec.env.items()],
                 "Labels": spec.container_labels, "Init": True}
    if spec.user:
        container["User"] = spec.user
    resources: dict[str, Any] = {}
    if spec.memory_limit:
        resources["MemoryBytes"] = spec.memory_limit
    if spec.cpus:
        resources["NanoCPUs"] = int(spec.cpus * 1e9)
    placement: dict[str, Any] = {"Constraints": list(spec.constraints)}
    if spec.max_replicas_per_node:
        placement["MaxReplicas"] = spec.max_replicas_per_node
    body: dict[str, Any] = {
        "Name": spec.name,
        "Labels": spec.labels,
        "TaskTemplate": {"ContainerSpec": container, "Resources": {"Limits": resources} if resources else {},
                         "RestartPolicy": {"Condition": spec.restart_condition}, "Placement": placement},
        "Mode": {"Global": {}} if spec.global_mode else {"Replicated": {"Replicas": spec.replicas}},
        "EndpointSpec": {"Mode": "vip", "Ports": [
            {"Protocol": port.partition("/")[2] or "tcp", "TargetPort": int(port.partition("/")[0]),
             "PublishedPort": published, "PublishMode": "host"} for port, published in spec.ports.items()]},
    }
    if (update := _swarm_config(spec.update)) is not None:
        body["UpdateConfig"] = update
    if (rollback := _swarm_config(spec.rollback)) is not None:
        body["RollbackConfig"] = rollback
    return body


def _auth_headers(auth_config: dict[str, str] | None) -> dict[str, str]:
    # `docker service create --with-registry-auth`: the manager hands these credentials to every node it schedules
    # a task on, so that each can pull; the SDK's create_service would only send what a local config.json holds.
    from docker import auth

    return {"X-Registry-Auth": auth.encode_header(auth_config)} if auth_config else {}


def resolve_digest(engine: Engine, reference: str, auth_config: dict[str, str] | None) -> str:
    """The registry digest `reference` names now, asked by the manager as `docker service create` does, so that
    every node runs the very same image whatever the tag means later. EngineError when the registry refuses."""
    with engine.errors(f"Asking the registry for {reference}"):
        answer = engine.api.inspect_distribution(reference, auth_config=auth_config or None)
    # The descriptor is an OCI one: its keys are lowercase (mediaType, digest, size).
    digest = _text((answer.get("Descriptor") or {}).get("digest"))
    if not digest.startswith("sha256:"):
        raise EngineError(f"Asking the registry for {reference}: it named no digest")
    return digest


def find_service(engine: Engine, name: str) -> dict[str, Any] | None:
    """The service called exactly `name` (the engine's filter also matches prefixes), or None."""
    with engine.errors(f"Looking for service {name}"):
        found = engine.api.services(filters={"name": name})
    return next((service for service in found if (service.get("Spec") or {}).get("Name") == name), None)


def create_service(engine: Engine, spec: ServiceSpec, auth_config: dict[str, str] | None) -> str:
    """`docker service create --with-registry-auth`; returns the service's id."""
    with engine.errors(f"Creating service {spec.name}"):
        answer = engine.api._result(engine.api._post_json(
            engine.api._url("/services/create"), data=_service_body(spec), headers=_auth_headers(auth_config)),
            True)
    return _text(answer.get("ID"))


def update_service(engine: Engine, service: dict[str, Any], spec: ServiceSpec,
                   auth_config: dict[str, str] | None) -> None:
    """`docker service update --with-registry-auth` of `service` (as find_service read it) to `spec`: Swarm
    rolls the tasks over with the service's update settings."""
    with engine.errors(f"Updating service {spec.name}"):
        url = engine.api._url("/services/{0}/update", service["ID"])
        response = engine.api._post_json(url, data=_service_body(spec), headers=_auth_headers(auth_config),
                                         params={"version": service["Version"]["Index"]})
        engine.api._raise_for_status(response)


def scale_service(engine: Engine, service: dict[str, Any], replicas: int, labels: dict[str, str],
                  auth_config: dict[str, str] | None) -> None:
    """`docker service scale`, with the service's own labels replaced by `labels`: the spec as `service` (read by
    find_service) has it, but for its replica count and labels, so that the task template stays as it is and Swarm
    starts or stops tasks without rolling the running ones. The credentials sent are kept in the task template's pull
    options, which Swarm does not compare for a task that runs (it only hands them to the tasks it starts)."""
    spec = copy.deepcopy(service.get("Spec") or {})
    if "Replicated" not in (spec.get("Mode") or {}):
        raise EngineError(f"Scaling service {spec.get('Name', '')}: it is not a replicated service")
    spec["Mode"] = {"Replicated": {"Replicas": replicas}}
    spec["Labels"] = labels
    with engine.errors(f"Scaling service {spec.get('Name', '')}"):
        url = engine.api._url("/services/{0}/update", service["ID"])
        response = engine.api._post_json(url, data=spec, headers=_auth_headers(auth_config),
                                         params={"version": service["Version"]["Index"]})
        engine.api._raise_for_status(response)


def service_image(service: dict[str, Any]) -> str:
    """The image a service's task template runs (`repo:tag@sha256:...`), as find_service read it."""
    return _text((((service.get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image"))


def _task_record(task: dict[str, Any], nodes: dict[str, str]) -> dict[str, Any]:
    status = task.get("Status") or {}
    image = _text(((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Image"))
    node_id = _text(task.get("NodeID"))
    return {
        "id": _text(task.get("ID")),
        "node": nodes.get(node_id, node_id),
        "node_id": node_id,
        "slot": task.get("Slot") if isinstance(task.get("Slot"), int) else None,
        "state": _text(status.get("State")),
        # When the task entered its state, by the manager's clock (Status.Timestamp, RFC 3339).
        "state_since": _text(status.get("Timestamp")),
        "desired_state": _text(task.get("DesiredState")),
        "error": _text(status.get("Err")),
        "message": _text(status.get("Message")),
        "image_digest": image.rpartition("@")[2] if "@" in image else "",
        "updated": _text(task.get("UpdatedAt")),
    }


def service_state(engine: Engine, service_id: str) -> dict[str, Any]:
    """The service as a deployment target records it: {id, replicas (asked; null for global), running (tasks
    running that should), update_state, update_message, tasks: [...]} with each task's node (by address: nodes in
    namespaces share a hostname), state and since when, desired state, error and image digest, newest first."""
    with engine.errors(f"Reading service {service_id[:12]}"):
        service = engine.api.inspect_service(service_id)
        tasks = engine.api.tasks(filters={"service": service_id})
        nodes = {node["ID"]: _address(node) or _text((node.get("Description") or {}).get("Hostname"))
                 for node in engine.api.nodes() if isinstance(node, dict) and "ID" in node}
    mode = (service.get("Spec") or {}).get("Mode") or {}
    update = service.get("UpdateStatus") or {}
    records = sorted((_task_record(task, nodes) for task in tasks if isinstance(task, dict)),
                     key=lambda task: task["updated"], reverse=True)[:MAX_TASKS]
    return {
        "id": _text(service.get("ID")),
        "replicas": (mode.get("Replicated") or {}).get("Replicas") if "Replicated" in mode else None,
        "running": sum(1 for task in records if task["state"] == "running" and task["desired_state"] == "running"),
        "update_state": _text(update.get("State")),
        "update_message": _text(update.get("Message")),
        "update_started": _text(update.get("StartedAt")),
        "tasks": records,
    }


def remove_service(engine: Engine, service_id: str) -> None:
    """`docker service rm`: its tasks stop on every node."""
    with engine.errors(f"Removing service {service_id[:12]}"):
        engine.api.remove_service(service_id)
