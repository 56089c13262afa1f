from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from console.audit.constants import Action


class AuditEventQuerySet(models.QuerySet):
    def for_user(self, user) -> AuditEventQuerySet:
        """A user's own events; staff see everyone's."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self.all()
        return self.filter(actor=user)


class AuditEvent(models.Model):
    """Who did what to which object, from where and when. Written by console.audit.services.record only.

    `actor` is the account the event belongs to: for a failed sign-in, the account someone tried to enter (so its
    owner sees the attempt). `actor_name` keeps the username (or the username tried) after the account is gone.
    """

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    # No `choices`: a new action (console.audit.constants) must not need a migration; record() checks the name.
    action = models.CharField(max_length=40)
    target_type = models.CharField(max_length=100, blank=True, help_text="app_label.model of the object acted on.")
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["actor", "-created"], name="audit_actor_created"),
            models.Index(fields=["action", "-created"], name="audit_action_created"),
        ]

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action} {self.target_label}".strip()

    @property
    def action_label(self) -> str:
        return Action(self.action).label if self.action in Action.values else self.action
