"""The lifecycle every background run shares: builds, pushes, pulls, deployments and git imports.

A job is a row that starts `queued`, is claimed atomically by exactly one worker (`running`), appends log lines
with increasing offsets while it runs, sends a heartbeat, and ends in one final status with the error recorded.
Readers (the browser and the API) ask for the lines after an offset, so they see each line as soon as it is
committed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, models, transaction
from django.utils import timezone

from console.constants import ACTIVE_STATUSES, FINAL_STATUSES, JobStatus

log = logging.getLogger(__name__)

# What follows a job of a kind once it is final (the event it becomes, console/events): apps register a listener
# in their AppConfig.ready(), so this module imports none of them. Called once per job, by whoever ended it.
_finish_listeners: dict[type, list[Callable[[Job], None]]] = {}


def on_finish(model: type, listener: Callable[[Job], None]) -> None:
    """Call `listener(job)` once each job of `model` is final (by a worker, the reaper or a cancel)."""
    listeners = _finish_listeners.setdefault(model, [])
    if listener not in listeners:
        listeners.append(listener)


def _finished(job: Job) -> None:
    for listener in _finish_listeners.get(type(job), ()):
        try:
            listener(job)
        except Exception:  # what follows a job must not undo its end, nor stop the next listener
            log.exception("A listener after %s #%s failed", type(job).__name__, job.pk)


class Job(models.Model):
    """Abstract base of every background run."""

    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    task_id = models.CharField(max_length=64, blank=True, help_text="The Celery task that runs this job.")
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    log_line_count = models.PositiveIntegerField(default=0)
    queued_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        # A job numbered per user (console/numbering.py) goes by its owner's number for it, any other by its id.
        return f"{self._meta.verbose_name} #{getattr(self, 'display_number', self.pk)} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def duration(self) -> timedelta | None:
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    @classmethod
    def job_type(cls) -> str:
        return cls._meta.label_lower


@dataclass(frozen=True)
class LogChunk:
    lines: list[str]
    next_offset: int
    finished: bool


def claim(job: Job) -> bool:
    """Move a queued job to running; True for exactly one caller however many race for it."""
    now = timezone.now()
    won = (
        type(job)
        .objects.filter(pk=job.pk, status=JobStatus.QUEUED)
        .update(status=JobStatus.RUNNING, started_at=now, heartbeat_at=now)
        == 1
    )
    job.refresh_from_db()
    return won


def heartbeat(job: Job) -> None:
    type(job).objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(heartbeat_at=timezone.now())


@contextmanager
def heartbeats(job: Job, every: float) -> Iterator[None]:
    """Send the job's heartbeat every `every` seconds from a thread while the block runs: for work that holds the
    worker in one long call (reading a whole image from the engine) and cannot beat between its steps."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(every):
                heartbeat(job)
        finally:
            connection.close()  # the thread's own connection

    thread = threading.Thread(target=beat, daemon=True, name=f"{job.job_type()}-{job.pk}-heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def append_log(job: Job, lines: list[str]) -> None:
    """Append lines to the job's log, numbered on from the last one; each append is one transaction."""
    from console.models import JobLogLine

    if not lines:
        return
    model = type(job)
    with transaction.atomic():
        start = model.objects.select_for_update().values_list("log_line_count", flat=True).get(pk=job.pk)
        JobLogLine.objects.bulk_create(
            JobLogLine(job_type=model.job_type(), job_id=job.pk, number=start + index, text=line)
            for index, line in enumerate(lines)
        )
        model.objects.filter(pk=job.pk).update(log_line_count=start + len(lines), heartbeat_at=timezone.now())
    job.log_line_count = start + len(lines)


def read_log(job: Job, offset: int = 0, limit: int = 5000) -> LogChunk:
    """The log lines from `offset` on (at most `limit`), the offset to ask for next, and whether more may come."""
    from console.models import JobLogLine

    # Read the status first: a job that was final before the lines were read has no lines still to come.
    status = type(job).objects.values_list("status", flat=True).get(pk=job.pk)
    lines = list(
        JobLogLine.objects.filter(job_type=type(job).job_type(), job_id=job.pk, number__gte=offset)
        .order_by("number")
        .values_list("text", flat=True)[:limit]
    )
    next_offset = offset + len(lines)
    return LogChunk(lines=lines, next_offset=next_offset, finished=status in FINAL_STATUSES and len(lines) < limit)


def log_text(job: Job) -> str:
    from console.models import JobLogLine

    return "\n".join(
        JobLogLine.objects.filter(job_type=type(job).job_type(), job_id=job.pk)
        .order_by("number")
        .values_list("text", flat=True)
    )


def log_texts(jobs: list[Job]) -> dict[int, str]:
    """{job id: its whole log} for many jobs of one kind, in one query (a page of a list that shows logs)."""
    from console.models import JobLogLine

    if not jobs:
        return {}
    lines: dict[int, list[str]] = {job.pk: [] for job in jobs}
    for job_id, text in (JobLogLine.objects.filter(job_type=type(jobs[0]).job_type(), job_id__in=list(lines))
                         .order_by("job_id", "number").values_list("job_id", "text")):
        lines[job_id].append(text)
    return {job_id: "\n".join(texts) for job_id, texts in lines.items()}


def finish(job: Job, status: str, error: str = "") -> bool:
    """End an active job in a final status; False when it had already ended (say, cancelled meanwhile)."""
    if status not in FINAL_STATUSES:
        raise ValueError(f"{status!r} is not a final status")
    changed = (
        type(job)
        .objects.filter(pk=job.pk, status__in=ACTIVE_STATUSES)
        .update(status=status, error=error, finished_at=timezone.now())
        == 1
    )
    job.refresh_from_db()
    if changed:
        _finished(job)
    return changed


def request_cancel(job: Job) -> bool:
    """A queued job is cancelled at once; a running one is asked to stop. False when already final."""
    model = type(job)
    if model.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, cancel_requested=True, finished_at=timezone.now()
    ):
        job.refresh_from_db()
        _finished(job)
        return True
    asked = model.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(cancel_requested=True) == 1
    job.refresh_from_db()
    return asked


def cancel_requested(job: Job) -> bool:
    return type(job).objects.filter(pk=job.pk, cancel_requested=True).exists()


def stale_jobs(model: type[Job], older_than: timedelta) -> models.QuerySet:
    """Running jobs whose worker has not sent a heartbeat for `older_than`: their worker is gone."""
    return model.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=timezone.now() - older_than)
