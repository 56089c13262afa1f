"""One reaper of lost jobs: a running job whose worker stopped sending heartbeats ends `failed`.

Each kind gives its error words and what to undo for a job its worker left half done (a push's temporary tag, a
deployment's half-made containers); the finish is the same atomic one as a worker's, so a job that ended meanwhile
is not reaped, and the clean-up runs once per job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db.models import QuerySet

from console.constants import JobStatus
from console.jobs import lifecycle
from console.jobs.lifecycle import Job

log = logging.getLogger(__name__)


def reap_lost(
    model: type[Job],
    older_than: timedelta,
    error: str,
    *,
    log_line: str | None = None,
    clean_up: Callable[[Job], None] | None = None,
    queryset: Callable[[QuerySet], QuerySet] | None = None,
) -> list[Job]:
    """Fail the running jobs of `model` with no heartbeat for `older_than`; returns those this call reaped.

    `error` is stored on the job and `log_line` (default: `error`) ends its log; `clean_up(job)` runs once for
    each reaped job, after it is failed (its failure is logged and does not stop the others); `queryset` may
    narrow or extend the query (select_related)."""
    stale = lifecycle.stale_jobs(model, older_than)
    if queryset is not None:
        stale = queryset(stale)
    reaped = []
    for job in stale:
        if not lifecycle.finish(job, JobStatus.FAILED, error):
            continue
        reaped.append(job)
        if clean_up is not None:
            try:
                clean_up(job)
            except Exception:  # one job's clean-up must not leave the next lost job running
                log.exception("Cleaning up after lost %s #%s failed", model.__name__, job.pk)
        lifecycle.append_log(job, [error if log_line is None else log_line])
    return reaped
