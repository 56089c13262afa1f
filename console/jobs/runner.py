"""One way to run a job: claim it, do the kind's work, finish it, whatever happened in between.

A kind subclasses `JobRunner`, names its `model` and writes `work()`, which returns the final status and the
error shown to the user. The runner owns what every kind needs and used to write again: only one caller runs a
job (the claim), a bug in the work ends the job `failed` with the traceback in the job's log (the user's error
field gets the kind's fixed words, never the traceback), and however the work ends the job is finished, never left
`running`.
"""

from __future__ import annotations

import logging
import traceback
from typing import ClassVar

from console.constants import JobStatus
from console.jobs import lifecycle
from console.jobs.lifecycle import Job

log = logging.getLogger(__name__)

# What the user reads for a bug in the console; the job's log and the operator's log have the details.
UNEXPECTED_ERROR = "The console met an unexpected error; the operator's log has the details."
# The line before the traceback in the job's log.
TRACEBACK_HEADER = "The console met an unexpected error:"


class JobRunner:
    """claim -> work -> finish for one kind of job. Hooks, each with a default:

    - `load(job_id)`: the job row (None when it is gone);
    - `claim(job)`: True for exactly one caller (a build also checks its node);
    - `work(job)`: the kind's work, returning (final status, error for the user);
    - `unexpected(job, exc)`: the error for the user when `work` raised;
    - `log(job, lines)`: how lines reach the job's log (a build buffers and masks its secrets);
    - `conclude(job, status, error)`: the last log lines and clean-up before the job is finished;
    - `public_error(job, error)`: the error as stored on the job;
    - `finished(job, status)`: what follows once the job is final (a build hands out the next one).
    """

    model: ClassVar[type[Job]]
    # select_related for `load`, so that the work does not query per relation.
    related: ClassVar[tuple[str, ...]] = ()
    unexpected_error: ClassVar[str] = UNEXPECTED_ERROR

    def run(self, job_id: int) -> Job | None:
        """Run the job to its end; None when this caller did not run it (gone, or claimed by another)."""
        job = self.load(job_id)
        if job is None or not self.claim(job):
            return None
        status, error = JobStatus.FAILED, self.unexpected_error
        try:
            status, error = self.work(job)
        except Exception as exc:  # a bug, not the job's failure: it must end all the same, the log says why
            log.exception("%s #%s failed unexpectedly", type(job).__name__, job.pk)
            status, error = JobStatus.FAILED, self.unexpected(job, exc)
            self._log_traceback(job)
        try:
            self.conclude(job, status, error)
        except Exception:  # the job is finished below whatever its clean-up met
            log.exception("%s #%s: its last steps failed", type(job).__name__, job.pk)
            if status != JobStatus.FAILED:
                status, error = JobStatus.FAILED, self.unexpected_error
            self._log_traceback(job)
        finally:
            lifecycle.finish(job, status, self.public_error(job, error))
        self.finished(job, status)
        return job

    # -- hooks ----------------------------------------------------------------------------------------------------

    def load(self, job_id: int) -> Job | None:
        jobs = self.model.objects.filter(pk=job_id)
        if self.related:
            jobs = jobs.select_related(*self.related)
        return jobs.first()

    def claim(self, job: Job) -> bool:
        return lifecycle.claim(job)

    def work(self, job: Job) -> tuple[str, str]:
        raise NotImplementedError

    def unexpected(self, job: Job, exc: Exception) -> str:
        return self.unexpected_error

    def log(self, job: Job, lines: list[str]) -> None:
        lifecycle.append_log(job, lines)

    def conclude(self, job: Job, status: str, error: str) -> None:
        if error:
            self.log(job, [f"error: {error}"])

    def public_error(self, job: Job, error: str) -> str:
        return error

    def finished(self, job: Job, status: str) -> None:
        log.info("%s #%s %s", type(job).__name__, job.pk, status)

    # -- helpers ----------------------------------------------------------------------------------------------------

    def _log_traceback(self, job: Job) -> None:
        """The traceback of the exception being handled, into the job's log (never into its error field)."""
        lines = [TRACEBACK_HEADER, *traceback.format_exc().rstrip().splitlines()]
        try:
            self.log(job, lines)
        except Exception:  # the log itself may be what broke: the operator's log has it then
            log.exception("%s #%s: could not write the traceback to its log", type(job).__name__, job.pk)
