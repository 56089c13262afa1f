from __future__ import annotations

from django.conf import settings
from django.db import models


class AccessTokenQuerySet(models.QuerySet):
    def for_user(self, user) -> AccessTokenQuerySet:
        return self.filter(user=user)


class AccessToken(models.Model):
    """A personal access token for the API and `docker login`: shown once, stored only as a SHA-256 hash."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100)
    # The first characters of the token, kept in clear so that users can tell their tokens apart.
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)

    objects = AccessTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
