"""Deployments that follow a tag: an `image.pushed` event (console/events) that moves `repository:tag` in the
console's registry deploys the pushed digest as a new release of every app of the pusher's namespace owner whose
latest deployment follows that tag, with its settings and hosts (single hosts or a swarm) and the usual health
gate; an app that asks for approval gets a PendingRelease instead, which a person approves (then it deploys) or
declines. The release records what triggered it (`Deployment.trigger`).

Registered in FleetConfig.ready(): `image_pushed` is the events listener (it only sends work on commit); the task
`fleet.follow_tag` runs `follow_pushed_tag(event_id)` on a worker.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from console import jobs
from console.audit.constants import Action
from console.audit.services import record
from console.constants import ACTIVE_STATUSES
from console.errors import Conflict
from console.events.models import Event
from fleet.constants import PendingStatus
from fleet.models import Deployment, PendingRelease
from fleet.services.deployments import create_deployment, settings_of
from registry.services import ensure_console_account

log = logging.getLogger(__name__)

FOLLOW_TASK = "fleet.follow_tag"


class AppBusy(Exception):
    """The app is being deployed right now: the push is followed once that ends (the task tries again)."""


def followed_tag(event: Event) -> str:
    tag = (event.data or {}).get("tag") or ""
    return f"{event.repository}:{tag}" if event.repository and tag else ""


def image_pushed(event: Event) -> None:
    """The events listener: when some app of the owner follows the pushed tag, follow it on a worker."""
    tag = followed_tag(event)
    if tag and (event.data or {}).get("digest") and Deployment.objects.filter(owner=event.owner,
                                                                             follow_tag=tag).exists():
        transaction.on_commit(lambda: jobs.send(FOLLOW_TASK, event.pk))


def _latest(owner, name: str) -> Deployment | None:
    return Deployment.objects.filter(owner=owner, name=name).prefetch_related("targets").order_by("-pk").first()


def _runs(deployment: Deployment, digest: str) -> bool:
    """Whether the deployment already asked for (or runs) this digest: a push that does not move the tag."""
    return deployment.image.endswith(f"@{digest}") or deployment.image_digest.endswith(f"@{digest}")


def follow_pushed_tag(event_id: int) -> list[Deployment | PendingRelease]:
    """Each app following the event's tag: a new release by digest, or a pending one. Raises AppBusy while one of
    them is being deployed (the others are done; the task asks again, and what is done is not done twice)."""
    event = Event.objects.select_related("owner").filter(pk=event_id).first()
    tag = followed_tag(event) if event is not None else ""
    digest = (event.data or {}).get("digest", "") if event is not None else ""
    if not tag or not digest:
        return []
    started: list[Deployment | PendingRelease] = []
    busy = False
    names = (Deployment.objects.filter(owner=event.owner, follow_tag=tag).values_list("name", flat=True)
             .distinct().order_by("name"))
    for name in names:
        latest = _latest(event.owner, name)
        # The app stopped following (its latest deployment follows something else or nothing), or runs it already.
        if latest is None or latest.follow_tag != tag or _runs(latest, digest):
            continue
        if latest.status in ACTIVE_STATUSES:
            busy = True
            continue
        trigger = {"by": "image.pushed", "event": event.pk, "tag": tag, "digest": digest,
                   "pushed_by": (event.data or {}).get("actor", ""), "approved_by": None}
        if latest.follow_approval:
            pending = _ask_for_approval(latest, event, tag, digest)
            if pending is not None:
                started.append(pending)
            continue
        try:
            started.append(start_release(latest, digest, trigger))
        except ValidationError as exc:
            log.warning("Following %s for %s #%s: %s", tag, name, latest.pk, " ".join(exc.messages))
    if busy:
        raise AppBusy(f"an app following {tag} is being deployed")
    return started


def _ask_for_approval(latest: Deployment, event: Event, tag: str, digest: str) -> PendingRelease | None:
    with transaction.atomic():
        waiting = PendingRelease.objects.select_for_update().filter(owner=latest.owner, name=latest.name,
                                                                   status=PendingStatus.PENDING)
        if any(pending.digest == digest for pending in waiting):
            return None
        waiting.update(status=PendingStatus.SUPERSEDED, decided_at=timezone.now())
        return PendingRelease.objects.create(owner=latest.owner, deployment=latest, name=latest.name,
                                             follow_tag=tag, digest=digest, event_id=event.pk,
                                             pushed_by=(event.data or {}).get("actor", "")[:150])


def start_release(latest: Deployment, digest: str, trigger: dict[str, Any]) -> Deployment:
    """The app's latest settings and hosts, its image the pushed digest, pulled from the console's registry with
    the owner's own account (whose token grants their namespace)."""
    repository = trigger["tag"].rsplit(":", 1)[0]
    data = settings_of(latest)
    data.update(image=f"{settings.REGISTRY_ADDRESS}/{repository}@{digest}",
                registry=ensure_console_account(latest.owner).pk)
    if not data["hosts"] and not data["selector"]:
        raise ValidationError({"detail": f"The hosts of {latest.name} #{latest.display_number} are gone."})
    return create_deployment(latest.owner, data, trigger=trigger)


def pending_for_user(user):
    return PendingRelease.objects.for_user(user).select_related("deployment", "release", "decided_by")


def approve(pending: PendingRelease, user) -> Deployment:
    """Deploy a pending release (once: a second approval, or one after a decline, is a 409)."""
    with transaction.atomic():
        claimed = PendingRelease.objects.filter(pk=pending.pk, status=PendingStatus.PENDING).update(
            status=PendingStatus.APPROVED, decided_by=user, decided_at=timezone.now()) == 1
        if not claimed:
            raise Conflict("This release is no longer waiting for approval.")
        latest = _latest(pending.owner, pending.name) or pending.deployment
        trigger = {"by": "image.pushed", "event": pending.event_id, "tag": pending.follow_tag,
                   "digest": pending.digest, "pushed_by": pending.pushed_by, "approved_by": user.get_username()}
        release = start_release(latest, pending.digest, trigger)
        PendingRelease.objects.filter(pk=pending.pk).update(release=release)
    pending.refresh_from_db()
    return release


def decline(pending: PendingRelease, user, request=None) -> PendingRelease:
    """Leave a pending release undeployed (once, as approve), in the audit log."""
    with transaction.atomic():
        if PendingRelease.objects.filter(pk=pending.pk, status=PendingStatus.PENDING).update(
                status=PendingStatus.DECLINED, decided_by=user, decided_at=timezone.now()) != 1:
            raise Conflict("This release is no longer waiting for approval.")
        pending.refresh_from_db()
        deployment = pending.deployment
        record(user, Action.RELEASE_DECLINED, target=deployment,
               detail={"name": deployment.name, "image": f"{pending.follow_tag}@{pending.digest}",
                       "pending_release": pending.pk}, request=request)
    return pending
