from __future__ import annotations

from django.db import models

from console.jobs import Job


class SampleJob(Job):
    """A concrete job for testing the shared lifecycle on its own."""

    payload = models.CharField(max_length=100, blank=True)
