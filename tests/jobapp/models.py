from __future__ import annotations

from django.db import models

from console.crypto import EncryptedTextField
from console.jobs import Job


class SampleJob(Job):
    """A concrete job for testing the shared lifecycle on its own."""

    payload = models.CharField(max_length=100, blank=True)


class SecretHolder(models.Model):
    """A model with an encrypted column, for the encryption and key rotation tests."""

    secret = EncryptedTextField(blank=True)

    def __str__(self) -> str:
        return f"secret holder #{self.pk}"
