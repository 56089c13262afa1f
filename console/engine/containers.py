"""Containers on an engine: list them like `docker ps -a`, act on one, read its logs, run one for a deployment.

Every function takes an `Engine` and wraps its SDK calls in `engine.errors(...)`, so callers only ever see the
console's own `EngineError` family.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from console import references
from console.engine.core import Engine, EngineBadRequest, EngineError, EngineNotFound

CONTAINER_ACTIONS = ("start", "stop", "restart", "remove")
STOP_TIMEOUT = 10


def _ports(raw: list[dict]) -> list[dict]:
    ports = []
    for port in raw or []:
        entry = {"container_port": port.get("PrivatePort"), "protocol": port.get("Type", "tcp")}
        if port.get("PublicPort"):
            entry.update(host_ip=port.get("IP", ""), host_port=port["PublicPort"])
        if entry not in ports:
            ports.append(entry)
    return sorted(ports, key=lambda p: (p["container_port"] or 0, p.get("host_port") or 0))


def _summary(raw: dict) -> dict[str, Any]:
    names = raw.get("Names") or []
    return {
        "id": raw["Id"],
        "name": names[0].lstrip("/") if names else "",
        "image": raw.get("Image", ""),
        "image_id": raw.get("ImageID", ""),
        "command": raw.get("Command", ""),
        "state": raw.get("State", ""),
        "status": raw.get("Status", ""),
        "ports": _ports(raw.get("Ports")),
        "labels": raw.get("Labels") or {},
        "created": datetime.fromtimestamp(raw.get("Created", 0), tz=UTC),
    }


def list_containers(engine: Engine, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every container, running or not (`docker ps -a`), newest first; optionally only those with `labels`."""
    filters = {"label": [f"{key}={value}" for key, value in labels.items()]} if labels else None
    with engine.errors("Listing containers"):
        raw = engine.api.containers(all=True, filters=filters)
    return [_summary(item) for item in raw]


def get_container(engine: Engine, container_id: str) -> dict[str, Any]:
    """One container's summary; EngineNotFound when the engine has no such container."""
    with engine.errors(f"Reading container {container_id}"):
        raw = engine.api.containers(all=True, filters={"id": container_id})
    if not raw:
        # The id filter matches prefixes; names are looked up by inspect.
        with engine.errors(f"Reading container {container_id}"):
            full_id = engine.api.inspect_container(container_id)["Id"]
            raw = engine.api.containers(all=True, filters={"id": full_id})
    if not raw:
        raise EngineNotFound(f"Reading container {container_id}: no such container")
    return _summary(raw[0])


def act_on_container(engine: Engine, container_id: str, action: str) -> None:
    """`docker start|stop|restart|rm -f` on one container."""
    if action not in CONTAINER_ACTIONS:
        raise ValueError(f"unknown container action {action!r}")
    verb = {"start": "Starting", "stop": "Stopping", "restart": "Restarting", "remove": "Removing"}[action]
    with engine.errors(f"{verb} container {container_id[:12]}"):
        if action == "start":
            engine.api.start(container_id)
        elif action == "stop":
            engine.api.stop(container_id, timeout=STOP_TIMEOUT)
        elif action == "restart":
            engine.api.restart(container_id, timeout=STOP_TIMEOUT)
        else:
            engine.api.remove_container(container_id, force=True, v=True)


def container_logs(engine: Engine, container_id: str, tail: int | None = 200) -> str:
    """The last `tail` lines of a container's stdout and stderr (all of them when tail is None)."""
    with engine.errors(f"Reading the logs of container {container_id[:12]}"):
        raw = engine.api.logs(container_id, stdout=True, stderr=True, tail="all" if tail is None else tail)
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


# -- images on a host -------------------------------------------------------------------------------------

def image_identity(engine: Engine, reference: str) -> tuple[str, list[str], bool]:
    """(image id, repo digests, has a HEALTHCHECK) of an image the engine has; EngineNotFound otherwise."""
    try:
        with engine.errors(f"Inspecting image {reference}"):
            raw = engine.api.inspect_image(reference)
    except EngineBadRequest as exc:
        # A malformed reference (uppercase, too long) names no image: the engine answers 400 for it, not 404.
        raise EngineNotFound(str(exc)) from exc
    healthcheck = (raw.get("Config") or {}).get("Healthcheck") or {}
    has_health = bool(healthcheck.get("Test")) and healthcheck["Test"][0] != "NONE"
    return raw["Id"], list(raw.get("RepoDigests") or []), has_health


def pull_image(engine: Engine, reference: str, auth_config: dict[str, str] | None = None) -> str:
    """`docker pull`, with credentials when given; returns the pulled image's id."""
    repository, tag = split_reference(reference)
    with engine.errors(f"Pulling {reference}"):
        for event in engine.api.pull(repository, tag=tag, stream=True, decode=True, auth_config=auth_config):
            if event.get("error"):
                raise EngineError(f"Pulling {reference} on {engine.where}: {event['error']}")
        return engine.api.inspect_image(reference)["Id"]


def split_reference(reference: str) -> tuple[str, str | None]:
    """`repo[:tag][@digest]` -> (repo, tag or digest), minding a registry's `host:port/` prefix."""
    return references.split(reference)


# -- running a container for a deployment -----------------------------------------------------------------

@dataclass
class ContainerSpec:
    """What a deployment asks of one container; `ports` maps "8080/tcp" to a host port."""

    image: str
    name: str
    ports: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    restart_policy: str = "no"
    memory_limit: int | None = None
    cpus: float | None = None
    user: str = ""


def _port_pair(port: str) -> tuple[int, str]:
    number, _, protocol = port.partition("/")
    return int(number), protocol or "tcp"


def create_container(engine: Engine, spec: ContainerSpec) -> str:
    """Create (not start) a container from `spec`; returns its id."""
    restart = {"Name": spec.restart_policy} if spec.restart_policy and spec.restart_policy != "no" else None
    with engine.errors(f"Creating container {spec.name}"):
        host_config = engine.api.create_host_config(
            port_bindings={port: host_port for port, host_port in spec.ports.items()},
            restart_policy=restart,
            mem_limit=spec.memory_limit or None,
            nano_cpus=int(spec.cpus * 1e9) if spec.cpus else None,
            # docker-init as PID 1 forwards SIGTERM: an app that does not handle it itself (PID 1 ignores it by
            # default) still stops at once, which keeps the hand-over to a new container short.
            init=True,
        )
        created = engine.api.create_container(
            spec.image,
            name=spec.name,
            environment=spec.env,
            labels=spec.labels,
            # (number, protocol) pairs: the SDK reads a plain "8080/tcp" as port "8080/tcp" of protocol tcp, and
            # the engine then publishes nothing for an image that does not EXPOSE the port itself.
            ports=[_port_pair(port) for port in spec.ports],
            user=spec.user or None,
            host_config=host_config,
        )
    return created["Id"]


def container_state(engine: Engine, container_id: str) -> dict[str, Any]:
    with engine.errors(f"Inspecting container {container_id[:12]}"):
        return engine.api.inspect_container(container_id)["State"]


def wait_until_serving(
    engine: Engine, container_id: str, grace: float, health_timeout: float, has_health: bool
) -> str:
    """Wait until a started container has stayed up for `grace` seconds (and is healthy, when the image has a
    HEALTHCHECK); return "" when it serves, or the reason it does not."""
    started = time.monotonic()
    deadline = started + (health_timeout if has_health else grace)
    while True:
        state = container_state(engine, container_id)
        if not state.get("Running") or state.get("Restarting"):
            reason = f"the container exited with code {state.get('ExitCode')}"
            if state.get("Error"):
                reason += f": {state['Error']}"
            output = container_logs(engine, container_id, tail=5).strip()
            return f"{reason}; its last output: {output}" if output else reason
        health = (state.get("Health") or {}).get("Status")
        if has_health and health == "unhealthy":
            log = (state.get("Health") or {}).get("Log") or []
            detail = (log[-1].get("Output") or "").strip() if log else ""
            return "the container's health check failed" + (f": {detail}" if detail else "")
        up_for = time.monotonic() - started
        if up_for >= grace and (not has_health or health == "healthy"):
            return ""
        if time.monotonic() >= deadline:
            return f"the container was not healthy after {health_timeout:g} seconds"
        time.sleep(0.2)
