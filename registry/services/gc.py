"""Garbage collection of the console's registry: a staff member's job that runs Distribution's own
`docker-registry garbage-collect [--delete-untagged] config.yml` while the registry serves read-only, then has it
serve read-write again (registry/maintenance.py), and measures what it freed from the storage folder's size.

During the window:
- the registry process runs with `storage.maintenance.readonly` (Distribution refuses every write, 405), so no
  push can land half an image in storage while blobs are swept;
- the console's token endpoint refuses tokens that ask for `push` with "read-only ... retry", which the Docker
  CLI prints as `denied: The console's registry is read-only ...` (a push whose token predates the window gets
  Distribution's 405);
- tag, repository and retention deletes are refused with the same words (RegistryReadOnly).

`--delete-untagged` of Distribution 2.8 also deletes the platform manifests of a tagged multi-platform index (they
carry no tag of their own: distribution/distribution#3178), which would break that tag: a collection with
`delete_untagged` is refused while any tag points at an index, naming them.

The job runs where the registry's storage folder is (REGISTRY_DIR): the worker that takes it must be on the
registry's machine, as in the embedded setup.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from console import jobs
from console.audit.constants import Action
from console.audit.services import record
from console.constants import JobStatus
from console.errors import Conflict, DomainError
from console.folders import folder_bytes
from registry import maintenance, storage
from registry.models import GarbageCollection
from registry.server import CONFIG_FILE

log = logging.getLogger(__name__)

RUN_GC_TASK = "registry.run_garbage_collection"
# The lease the job holds on the read-only window, renewed every RENEW_SECONDS: a job whose worker dies lets the
# registry serve read-write again within LEASE_SECONDS.
LEASE_SECONDS = 60
RENEW_SECONDS = 10
SWITCH_SECONDS = 90
LOG_BATCH = 200
STAFF_ONLY = "Only staff may collect the registry's garbage."
NO_SUPERVISOR = ("The console's registry is not run by its supervisor (`manage.py registry_serve`, which "
                 "scripts/registry.sh and `make run` start), so it cannot be made read-only: nothing was collected.")
NO_BINARY = "docker-registry is not installed on this worker's machine: nothing was collected."
UNTAGGED_INDEXES = ("delete_untagged would delete the platform images of {count} tag(s) on multi-platform "
                    "indexes ({first}): Distribution 2.8 counts them as untagged. Collect without delete_untagged.")
WORKER_LOST = "The worker running this garbage collection stopped answering; the registry serves read-write again."


class StaffOnly(DomainError):
    status = 403


def trigger_gc(user, delete_untagged: bool = False, request=None) -> GarbageCollection:
    """Queue a collection (one at a time: Conflict while another is queued or running)."""
    if not getattr(user, "is_staff", False):
        raise StaffOnly(STAFF_ONLY)
    if delete_untagged:
        indexes = storage.read_index().tagged_indexes()
        if indexes:
            raise Conflict(UNTAGGED_INDEXES.format(count=len(indexes), first=", ".join(indexes[:3])))
    try:
        with transaction.atomic():
            collection = GarbageCollection.objects.create(requested_by=user, delete_untagged=delete_untagged)
            record(user, Action.REGISTRY_GC_STARTED, target=collection,
                   detail={"delete_untagged": delete_untagged}, request=request)
            jobs.enqueue_on_commit(collection, RUN_GC_TASK, failed_error="The console could not queue it.")
    except IntegrityError:
        active = GarbageCollection.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).first()
        raise Conflict(f"Garbage collection #{active.pk if active else '?'} is queued or running already.") from None
    return collection


class _Lease:
    """Holds the read-only lease from a thread (and beats the job's heart) until released."""

    def __init__(self, directory: Path, job: GarbageCollection) -> None:
        self.directory, self.job = directory, job
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._renew, daemon=True, name=f"registry-gc-{job.pk}-lease")

    def _renew(self) -> None:
        from django.db import connection

        try:
            while not self.stop.wait(RENEW_SECONDS):
                maintenance.hold_read_only(self.directory, LEASE_SECONDS, f"garbage collection #{self.job.pk}")
                jobs.heartbeat(self.job)
        finally:
            connection.close()

    def __enter__(self) -> _Lease:
        maintenance.hold_read_only(self.directory, LEASE_SECONDS, f"garbage collection #{self.job.pk}")
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=RENEW_SECONDS + 5)
        maintenance.release(self.directory)


class GarbageCollectionRunner(jobs.JobRunner):
    model = GarbageCollection

    def work(self, job: GarbageCollection) -> tuple[str, str]:
        directory = Path(settings.REGISTRY_DIR)
        binary = shutil.which("docker-registry")
        if binary is None:
            return JobStatus.FAILED, NO_BINARY
        if not maintenance.supervised(directory):
            return JobStatus.FAILED, NO_SUPERVISOR
        root = storage.data_root(directory)
        status, error = JobStatus.SUCCEEDED, ""
        with _Lease(directory, job):
            self.log(job, ["Asking the registry to serve read-only ..."])
            if not maintenance.wait_for_mode(directory, maintenance.READ_ONLY, SWITCH_SECONDS):
                return JobStatus.FAILED, "The registry did not switch to read-only: nothing was collected."
            self.log(job, ["The registry serves read-only: pulls go on, pushes are refused until it is done."])
            before = folder_bytes(root)
            GarbageCollection.objects.filter(pk=job.pk).update(bytes_before=before)
            command = [binary, "garbage-collect", *(["--delete-untagged"] if job.delete_untagged else []),
                       str(directory / CONFIG_FILE)]
            self.log(job, ["$ " + " ".join(["docker-registry", *command[1:]])])
            code = self._collect(job, command)
            after = folder_bytes(root)
            GarbageCollection.objects.filter(pk=job.pk).update(bytes_after=after, freed_bytes=max(before - after, 0))
            self.log(job, [f"Freed {max(before - after, 0)} bytes ({before} before, {after} after)."])
            if code != 0:
                status, error = JobStatus.FAILED, f"docker-registry garbage-collect exited with status {code}."
        if maintenance.wait_for_mode(directory, maintenance.READ_WRITE, SWITCH_SECONDS):
            self.log(job, ["The registry serves read-write again."])
        else:
            status, error = JobStatus.FAILED, "The registry did not come back read-write: look at its log."
        return status, error

    def _collect(self, job: GarbageCollection, command: list[str]) -> int:
        """Run garbage-collect, its output into the job's log in batches; its exit status (-1: timed out)."""
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   errors="replace", stdin=subprocess.DEVNULL, start_new_session=True)
        timer = threading.Timer(settings.REGISTRY_GC_TIMEOUT, process.kill)
        timer.start()
        batch: list[str] = []
        try:
            for line in process.stdout:
                batch.append(line.rstrip("\n")[:2000])
                if len(batch) >= LOG_BATCH:
                    self.log(job, batch)
                    batch = []
            self.log(job, batch)
            code = process.wait()
        finally:
            timer.cancel()
        if code < 0:
            self.log(job, [f"garbage-collect was stopped after {settings.REGISTRY_GC_TIMEOUT} seconds."])
        return code


def run_gc(job_id: int) -> GarbageCollection | None:
    return GarbageCollectionRunner().run(job_id)


def reap_lost_collections(older_than=None) -> list[int]:
    """Lost collections end failed and give up their lease (the registry serves read-write again)."""
    from datetime import timedelta

    if older_than is None:
        older_than = timedelta(seconds=settings.BUILD_HEARTBEAT_TIMEOUT)
    lost = jobs.reap_lost(GarbageCollection, older_than, WORKER_LOST, log_line=f"error: {WORKER_LOST}",
                          clean_up=lambda job: maintenance.release(Path(settings.REGISTRY_DIR)))
    return [job.pk for job in lost]
