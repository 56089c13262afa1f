from __future__ import annotations

from django.db import models


class JobLogLine(models.Model):
    """One line of a background run's log; `number` is its offset in that log."""

    job_type = models.CharField(max_length=64)
    job_id = models.BigIntegerField()
    number = models.PositiveIntegerField()
    text = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job_type", "job_id", "number"], name="unique_log_line_offset")
        ]

    def __str__(self) -> str:
        return f"{self.job_type}#{self.job_id}:{self.number}"
