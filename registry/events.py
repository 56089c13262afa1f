"""Pushes and pulls that end become `push.finished` and `pull.finished` events (console/events), registered in
RegistryConfig.ready()."""

from __future__ import annotations

from console.events.constants import EventKind
from console.events.services import record


def push_finished(push) -> None:
    record(push.owner, EventKind.PUSH_FINISHED, key=f"push:{push.pk}", repository=push.repository, data={
        "push": push.pk, "number": push.number, "status": push.status, "registry": push.registry.name,
        "repository": push.repository, "tag": push.tag, "digest": push.digest, "target": push.target,
        "error": push.error[:500],
    })


def pull_finished(pull) -> None:
    repository = pull.reference.split("@", 1)[0].rsplit(":", 1)[0] if pull.reference else ""
    record(pull.owner, EventKind.PULL_FINISHED, key=f"pull:{pull.pk}", repository=repository, data={
        "pull": pull.pk, "number": pull.number, "status": pull.status, "registry": pull.registry.name,
        "reference": pull.reference, "digest": pull.digest, "image_id": pull.image_id, "error": pull.error[:500],
    })
