from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from console.crypto import EncryptedTextField
from console.jobs import Job


class EventQuerySet(models.QuerySet):
    def for_user(self, user) -> EventQuerySet:
        """A user's own events only (staff too: an event is about its owner's images and jobs)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(owner=user)


class Event(models.Model):
    """Something that happened to a user's images or jobs, recorded once: `key` is unique (a registry event's id
    from Distribution, which retries, or the job that ended), so a second report of the same thing adds nothing.

    `repository` is the repository it is about (`alice/app` in the console's registry), for webhooks that follow
    one repository; `data` is what webhooks are sent, never a secret."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="events")
    # No `choices` in the database: a new kind (console/events/constants.py) needs no migration.
    kind = models.CharField(max_length=40)
    key = models.CharField(max_length=200, unique=True)
    repository = models.CharField(max_length=255, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["owner", "-id"], name="event_owner_newest")]

    def __str__(self) -> str:
        return f"{self.kind} {self.repository}".strip()


class WebhookQuerySet(models.QuerySet):
    def for_user(self, user) -> WebhookQuerySet:
        """A user's own webhooks only."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(owner=user)


class Webhook(models.Model):
    """A URL the console POSTs its owner's events to, signed with `secret` (stored encrypted, never shown).

    `events` lists the kinds it wants; `repository` (blank: all) narrows it to events about one repository."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list)
    repository = models.CharField(max_length=255, blank=True)
    secret = EncryptedTextField()
    active = models.BooleanField(default=True)
    created = models.DateTimeField(default=timezone.now)

    objects = WebhookQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event: Event) -> bool:
        return self.active and event.kind in self.events and (not self.repository or
                                                              self.repository == event.repository)


class Delivery(Job):
    """One event sent to one webhook: a job whose attempts are rows (`attempts`); between them it is queued again
    with `next_attempt_at` (exponential backoff), up to MAX_ATTEMPTS. `uid` is its X-Console-Delivery header; a
    redelivery is a new delivery of the same event (`redelivery_of`) with its own uid."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    redelivery_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="redeliveries")

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"delivery {self.uid} ({self.status})"


class DeliveryAttempt(models.Model):
    """One POST of a delivery: the answer's status (null when none came), the error, how long it took."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="delivery_attempt_number")]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"
