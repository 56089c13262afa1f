"""Containers on a host: which of them a user may see and act on (ContainerScope), listing, inspecting,
acting on them and reading their logs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from console.engine import Engine, EngineNotFound
from console.engine import containers as engine_containers
from fleet.constants import LABEL_DEPLOYMENT, LABEL_MANAGED, LABEL_OWNER, MAX_LOG_TAIL
from fleet.instance import made_by_this_console
from fleet.models import Deployment, Host
from fleet.services.hosts import engine_is_shared

CONTAINER_ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")


def _container_id(container_id: str) -> str:
    if not CONTAINER_ID_RE.match(container_id or ""):
        raise ValidationError({"container": "Name a container by its id or name."})
    return container_id


@dataclass
class ContainerScope:
    """Which containers on one host a user may see and act on: all of them when the host is the user's and its
    engine is theirs alone, else only those this console deployed for that user."""

    user_id: int
    everything: bool
    # Deployment ids of the user's, for containers deployed before the owner label existed.
    legacy_deployments: set[str]

    def allows(self, container: dict[str, Any]) -> bool:
        if self.everything:
            return True
        labels = container.get("labels") or {}
        # Another console's containers on a shared engine are not this user's, whatever ids their labels hold.
        if labels.get(LABEL_MANAGED) != "true" or not made_by_this_console(labels):
            return False
        if LABEL_OWNER in labels:
            return labels[LABEL_OWNER] == str(self.user_id)
        return labels.get(LABEL_DEPLOYMENT, "") in self.legacy_deployments


def _scope(host: Host, user, engine: Engine, containers: list[dict[str, Any]]) -> ContainerScope:
    """The one access decision for containers on a host (see ContainerScope), asked with the engine open: its ID is
    read now, so that a host registered under another address but reaching another user's engine counts as shared
    even before its first check."""
    if host.owner_id != getattr(user, "pk", None):
        return ContainerScope(user_id=-1, everything=False, legacy_deployments=set())
    engine_id = engine.engine_id()
    if engine_id and engine_id != host.engine_id:
        Host.objects.filter(pk=host.pk).update(engine_id=engine_id)
        host.engine_id = engine_id
    everything = not engine_is_shared(host, engine_id)
    legacy: set[str] = set()
    if not everything:
        wanted = {c["labels"].get(LABEL_DEPLOYMENT, "") for c in containers
                  if LABEL_OWNER not in c["labels"] and c["labels"].get(LABEL_MANAGED) == "true"}
        wanted = {int(value) for value in wanted if value.isdigit()}
        if wanted:
            legacy = {str(pk) for pk in Deployment.objects.filter(owner=user, pk__in=wanted)
                      .values_list("pk", flat=True)}
    return ContainerScope(user_id=user.pk, everything=everything, legacy_deployments=legacy)


def _not_yours(host: Host, container_id: str) -> EngineNotFound:
    # The same words for a container that does not exist and one of another user's: nothing confirms it exists.
    return EngineNotFound(f"There is no container {container_id!r} on {host.name} that you may use.")


def container_for_user(host: Host, user, engine: Engine, container_id: str) -> dict[str, Any]:
    """The container `container_id` (id, prefix or name) on `host` if `user` may see and act on it; EngineNotFound
    (404) otherwise, whether it is missing or another user's. Every container action goes through here."""
    container_id = _container_id(container_id)
    try:
        container = engine_containers.get_container(engine, container_id)
    except EngineNotFound:
        raise _not_yours(host, container_id) from None
    if not _scope(host, user, engine, [container]).allows(container):
        raise _not_yours(host, container_id)
    return container


def list_containers(host: Host, user) -> list[dict[str, Any]]:
    """The containers on `host` that `user` may see (see ContainerScope)."""
    with host.engine() as engine:
        containers = engine_containers.list_containers(engine)
        scope = _scope(host, user, engine, containers)
    return [container for container in containers if scope.allows(container)]


def get_container(host: Host, user, container_id: str) -> dict[str, Any]:
    with host.engine() as engine:
        return container_for_user(host, user, engine, container_id)


def container_action(host: Host, user, container_id: str, action: str) -> dict[str, Any] | None:
    """Start, stop, restart or remove one container; the container afterwards (None once removed)."""
    if action not in engine_containers.CONTAINER_ACTIONS:
        raise ValidationError({"action": f"Actions are {', '.join(engine_containers.CONTAINER_ACTIONS)}."})
    with host.engine() as engine:
        container = container_for_user(host, user, engine, container_id)
        engine_containers.act_on_container(engine, container["id"], action)
        if action == "remove":
            return None
        return engine_containers.get_container(engine, container["id"])


def clean_tail(value: Any, default: int = 200) -> int:
    if value in (None, ""):
        return default
    try:
        tail = int(value)
    except (TypeError, ValueError):
        raise ValidationError({"tail": "tail is a whole number of lines."}) from None
    if not 1 <= tail <= MAX_LOG_TAIL:
        raise ValidationError({"tail": f"tail is between 1 and {MAX_LOG_TAIL}."})
    return tail


def container_logs(host: Host, user, container_id: str, tail: int) -> str:
    with host.engine() as engine:
        container = container_for_user(host, user, engine, container_id)
        return engine_containers.container_logs(engine, container["id"], tail=tail)
