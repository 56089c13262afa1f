"""Events and webhooks: one function records an event (once, by its key) and queues its deliveries; webhooks are
made, changed and removed here for the browser and the API alike; `run_delivery` is the worker's side.

    from console.events.constants import EventKind
    from console.events.services import record
    record(owner, EventKind.IMAGE_PUSHED, key=f"registry:{event_id}", repository="alice/app", data={...})

`data` must never hold a secret: it is what every matching webhook is sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from console import jobs, netpolicy
from console.constants import JobStatus
from console.errors import Conflict, DomainError
from console.events.constants import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    EventKind,
)
from console.events.delivery import Answer, post
from console.events.models import Delivery, DeliveryAttempt, Event, Webhook

log = logging.getLogger(__name__)

DELIVER_TASK = "events.deliver"
SECRET_MIN_LENGTH = 8
SECRET_MAX_LENGTH = 256
MAX_WEBHOOKS_PER_USER = 50


# -- events ---------------------------------------------------------------------------------------------------------

# What follows an event of a kind inside the console (fleet: a deployment that follows the pushed tag), registered
# by apps above in their AppConfig.ready(), so this module imports none of them. Called once per new event, in the
# transaction that records it; a listener sends work on commit, it does not do it there.
_listeners: dict[str, list[Callable[[Event], None]]] = {}


def on_event(kind: str, listener: Callable[[Event], None]) -> None:
    listeners = _listeners.setdefault(kind, [])
    if listener not in listeners:
        listeners.append(listener)


def record(owner, kind: str, *, key: str, repository: str = "", data: dict[str, Any] | None = None) -> Event | None:
    """Record what happened once: None when an event with this `key` exists already (a report sent again).
    The owner's active webhooks that want it get a delivery each, sent once the transaction commits."""
    if kind not in EventKind.values:
        raise ValueError(f"{kind!r} is not an event kind; add it to console.events.constants.EventKind")
    if owner is None:
        return None
    try:
        with transaction.atomic():
            event = Event.objects.create(owner=owner, kind=kind, key=key[:200], repository=repository[:255],
                                         data=data or {})
    except IntegrityError:
        if Event.objects.filter(key=key[:200]).exists():
            return None
        raise
    for webhook in Webhook.objects.filter(owner=owner, active=True):
        if webhook.wants(event):
            _queue(Delivery.objects.create(webhook=webhook, event=event))
    for listener in _listeners.get(kind, ()):
        try:
            listener(event)
        except Exception:  # what follows an event must not lose the event
            log.exception("A listener of %s event #%s failed", kind, event.pk)
    return event


def events_for(user):
    return Event.objects.for_user(user)


def event_body(event: Event) -> bytes:
    """The JSON a webhook is sent for `event`: the same bytes at every attempt, so the signature is too."""
    document = {"id": event.pk, "type": event.kind, "created": event.created.isoformat(),
                "repository": event.repository, "data": event.data}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


# -- signing and backoff --------------------------------------------------------------------------------------------

def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of body>`: what X-Console-Signature carries."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (1, 2, ...): the base doubled each time, capped."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS
    return float(min(base * (2 ** (max(attempt, 1) - 1)), settings.WEBHOOK_RETRY_MAX_SECONDS))


def delivery_headers(delivery: Delivery, secret: str, body: bytes, now: float) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "console-webhooks/1",
        EVENT_HEADER: delivery.event.kind,
        DELIVERY_HEADER: str(delivery.uid),
        TIMESTAMP_HEADER: str(int(now)),
        SIGNATURE_HEADER: signature(secret, body),
    }


# -- webhooks -------------------------------------------------------------------------------------------------------

def webhooks_for(user):
    return Webhook.objects.for_user(user)


def _clean_url(user, url: str) -> str:
    url = (url or "").strip()
    if not url.lower().startswith(("http://", "https://")):
        raise DomainError("A webhook URL starts with http:// or https://.", field="url")
    try:
        netpolicy.check_url(url, user=user, purpose=netpolicy.WEBHOOK)
    except netpolicy.DestinationRefused as exc:
        raise DomainError(exc.message, field="url") from exc
    return url


def _clean_events(events) -> list[str]:
    if not isinstance(events, list | tuple) or not events:
        raise DomainError("Name at least one event: " + ", ".join(EventKind.values) + ".", field="events")
    unknown = [str(kind) for kind in events if kind not in EventKind.values]
    if unknown:
        raise DomainError(f"Unknown event {unknown[0][:60]!r}; the events are " + ", ".join(EventKind.values) + ".",
                          field="events")
    return sorted(set(events))


def _clean_secret(secret: str) -> str:
    if not isinstance(secret, str) or not SECRET_MIN_LENGTH <= len(secret) <= SECRET_MAX_LENGTH:
        raise DomainError(f"The secret is {SECRET_MIN_LENGTH} to {SECRET_MAX_LENGTH} characters long.",
                          field="secret")
    return secret


def _clean_repository(repository: str) -> str:
    repository = (repository or "").strip()
    if len(repository) > 255 or any(char.isspace() for char in repository):
        raise DomainError("A repository name has no spaces and at most 255 characters.", field="repository")
    return repository


def create_webhook(user, *, url: str, events, secret: str, repository: str = "", active: bool = True) -> Webhook:
    if Webhook.objects.filter(owner=user).count() >= MAX_WEBHOOKS_PER_USER:
        raise DomainError(f"An account has at most {MAX_WEBHOOKS_PER_USER} webhooks.")
    return Webhook.objects.create(owner=user, url=_clean_url(user, url), events=_clean_events(events),
                                  secret=_clean_secret(secret), repository=_clean_repository(repository),
                                  active=bool(active))


def update_webhook(webhook: Webhook, user, changes: dict[str, Any]) -> Webhook:
    """Change what `changes` names (url, events, secret, repository, active); the rest stays."""
    if "url" in changes:
        webhook.url = _clean_url(user, changes["url"])
    if "events" in changes:
        webhook.events = _clean_events(changes["events"])
    if changes.get("secret"):
        webhook.secret = _clean_secret(changes["secret"])
    if "repository" in changes:
        webhook.repository = _clean_repository(changes["repository"])
    if "active" in changes:
        webhook.active = bool(changes["active"])
    webhook.save()
    return webhook


def delete_webhook(webhook: Webhook) -> None:
    webhook.delete()


# -- deliveries -----------------------------------------------------------------------------------------------------

def _queue(delivery: Delivery, countdown: float | None = None) -> None:
    options = {"countdown": countdown} if countdown else {}
    jobs.enqueue_on_commit(delivery, DELIVER_TASK, failed_error="The delivery could not be queued.", **options)


def deliveries_for(webhook: Webhook):
    return webhook.deliveries.select_related("event").prefetch_related("attempts")


def redeliver(delivery: Delivery) -> Delivery:
    """Send the delivery's event again, as a new delivery (its own id, attempts and backoff)."""
    if not delivery.is_final:
        raise Conflict("This delivery is still being tried; redeliver it once it has ended.")
    again = Delivery.objects.create(webhook=delivery.webhook, event=delivery.event, redelivery_of=delivery)
    _queue(again)
    return again


def run_delivery(delivery_id: int) -> Delivery | None:
    """One attempt of a delivery (the task's body): succeeded on a 2xx, else queued again after its backoff, or
    failed after the last attempt. None when another worker holds it or it is gone."""
    delivery = Delivery.objects.select_related("webhook", "webhook__owner", "event").filter(pk=delivery_id).first()
    if delivery is None or not jobs.claim(delivery):
        return None
    webhook = delivery.webhook
    if not webhook.active:
        jobs.finish(delivery, JobStatus.FAILED, "The webhook is turned off.")
        return delivery
    number = delivery.attempt_count + 1
    started = timezone.now()
    try:
        body = event_body(delivery.event)
        headers = delivery_headers(delivery, webhook.secret, body, started.timestamp())
        answer = post(webhook.url, body, headers, user=webhook.owner, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
    except Exception:  # a bug must not leave the delivery running: it counts as a failed attempt
        log.exception("Delivery #%s failed unexpectedly", delivery.pk)
        answer = Answer(None, "The console met an unexpected error sending it.", 0)
    DeliveryAttempt.objects.create(delivery=delivery, number=number, started_at=started, status_code=answer.status,
                                   error=answer.error, duration_ms=answer.duration_ms)
    Delivery.objects.filter(pk=delivery.pk).update(attempt_count=number, response_status=answer.status)
    if answer.ok:
        jobs.finish(delivery, JobStatus.SUCCEEDED)
    elif number >= settings.WEBHOOK_MAX_ATTEMPTS:
        jobs.finish(delivery, JobStatus.FAILED, f"Gave up after {number} attempts: {answer.error}")
    else:
        wait = backoff(number)
        retry_at = timezone.now() + timedelta(seconds=wait)
        # Queued again only while it is still this worker's (running): a claim of the next attempt wins once.
        if Delivery.objects.filter(pk=delivery.pk, status=JobStatus.RUNNING).update(
                status=JobStatus.QUEUED, next_attempt_at=retry_at, error=answer.error) == 1:
            delivery.refresh_from_db()
            _queue(delivery, countdown=wait)
    delivery.refresh_from_db()
    return delivery


def send_due_deliveries(grace: timedelta = timedelta(minutes=2)) -> list[int]:
    """Deliveries whose next attempt is overdue (its message was lost with a broker) are sent again, and those a
    lost worker left running end failed (they can be redelivered). The periodic task's body."""
    before = timezone.now() - grace
    due = Q(next_attempt_at__lt=before) | Q(next_attempt_at=None, queued_at__lt=before)
    overdue = list(Delivery.objects.filter(due, status=JobStatus.QUEUED).values_list("pk", flat=True)[:500])
    for pk in overdue:
        jobs.send(DELIVER_TASK, pk)
    stale = timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 4 + 60)
    jobs.reap_lost(Delivery, stale, "The worker sending this delivery was lost.")
    return overdue
