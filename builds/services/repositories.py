"""Repositories and sources: one function per action, called by the browser views and the API alike."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction

from builds.constants import SourceKind
from builds.models import Repository, Source, SourceImport
from builds.sources.archives import ArchiveError, Limits, detect_format
from builds.sources.git import GitError, checkout, redact_url, validate_ref, validate_url
from builds.sources.sourcestore import delete_unused, size_of, store_archive
from console import jobs
from console.audit.constants import Action
from console.audit.services import record
from console.constants import JobStatus
from console.errors import NameTaken

log = logging.getLogger(__name__)

UNEXPECTED = "The console met an unexpected error; the operator's log has the details."
IMPORT_WORKER_LOST = "The worker cloning this repository was lost (no heartbeat); add the git source again."
# The task a worker clones with (builds/tasks.py), sent by name.
RUN_IMPORT_TASK = "builds.run_source_import"


class RepositoryNameTaken(NameTaken):
    pass


def create_repository(owner, name: str, description: str = "") -> Repository:
    try:
        with transaction.atomic():
            repository = Repository.objects.create(owner=owner, name=name, description=description)
            record(owner, Action.REPOSITORY_CREATED, target=repository)
            return repository
    except IntegrityError:
        raise RepositoryNameTaken(f"You already have a repository named {name!r}.") from None


def update_repository(repository: Repository, **changes) -> Repository:
    for field_name, value in changes.items():
        setattr(repository, field_name, value)
    try:
        with transaction.atomic():
            repository.save()
    except IntegrityError:
        raise RepositoryNameTaken(f"You already have a repository named {repository.name!r}.") from None
    return repository


def delete_repository(repository: Repository) -> None:
    hashes = set(repository.sources.values_list("sha256", flat=True))
    record(repository.owner, Action.REPOSITORY_DELETED, target=repository)
    repository.delete()
    for sha256 in hashes:
        _forget_blob_if_unused(sha256)


def _forget_blob_if_unused(sha256: str) -> None:
    if not Source.objects.filter(sha256=sha256).exists():
        delete_unused(sha256)


def add_archive_source(repository: Repository, upload: BinaryIO, filename: str = "") -> Source:
    """Check an uploaded archive and store it once per content; ArchiveError (nothing stored) when refused.

    One pass over the upload checks, normalises, indexes and hashes it (sourcestore.store_archive)."""
    limits = Limits.from_settings()
    size = size_of(upload)
    if size > limits.max_upload_bytes:
        raise ArchiveError(f"The upload is larger than {limits.max_upload_bytes:,} bytes.")
    fmt = detect_format(upload)
    stored = store_archive(upload, fmt, size, limits)
    source = Source.objects.create(
        repository=repository, kind=SourceKind.ARCHIVE, archive_format=fmt, sha256=stored.sha256, size=size,
        unpacked_size=stored.unpacked_size, file_count=stored.file_count, filename=filename[:255],
    )
    record(repository.owner, Action.SOURCE_ADDED, target=source, detail={"repository": repository.name})
    return source


def start_git_import(repository: Repository, url: str, ref: str = "") -> SourceImport:
    """Check a git URL and ref for the repository's owner and queue the clone; GitError (nothing stored) when
    refused. The clone runs in a worker (`run_git_import`); the source appears on the import once it is done."""
    owner = repository.owner
    url, ref = validate_url(url, owner), validate_ref(ref)
    redacted = redact_url(url)
    with transaction.atomic():
        job = SourceImport.objects.create(owner=owner, repository=repository, git_url=redacted[:2000],
                                          git_ref=ref, secret_url=url if url != redacted else "")
        jobs.enqueue_on_commit(job, RUN_IMPORT_TASK)
    return job


class GitImportRunner(jobs.JobRunner):
    """A git import as a job: the clone's credentials are dropped however it ends."""

    model = SourceImport
    related = ("repository", "owner")
    unexpected_error = UNEXPECTED

    def __init__(self, worker: str = "") -> None:
        self.worker = worker

    def work(self, job: SourceImport) -> tuple[str, str]:
        SourceImport.objects.filter(pk=job.pk).update(worker=self.worker[:255])
        try:
            source = add_git_source(job.repository, job.secret_url or job.git_url, job.git_ref, user=job.owner,
                                    heartbeat=lambda: jobs.heartbeat(job),
                                    say=lambda line: jobs.append_log(job, [line]))
        except (GitError, ArchiveError) as exc:
            return JobStatus.FAILED, str(exc)
        SourceImport.objects.filter(pk=job.pk).update(source=source)
        jobs.append_log(job, [f"Stored {source.file_count} files of commit {source.commit} as source #{source.pk}."])
        return JobStatus.SUCCEEDED, ""

    def conclude(self, job: SourceImport, status: str, error: str) -> None:
        super().conclude(job, status, error)
        _forget_import_credentials(job)


def run_git_import(import_id: int, worker: str = "") -> None:
    """The worker's half of a git import: clone, store the checkout as a source, end the job."""
    GitImportRunner(worker).run(import_id)


def _forget_import_credentials(job: SourceImport) -> None:
    # The credentials were only needed for this clone.
    SourceImport.objects.filter(pk=job.pk).update(secret_url="")


def reap_lost_imports(older_than: timedelta | None = None) -> list[int]:
    """Fail running imports whose worker stopped sending heartbeats (periodic, see console/celery.py)."""
    if older_than is None:
        older_than = timedelta(seconds=settings.BUILD_HEARTBEAT_TIMEOUT)
    reaped = [job.pk for job in jobs.reap_lost(SourceImport, older_than, IMPORT_WORKER_LOST,
                                               log_line=f"error: {IMPORT_WORKER_LOST}",
                                               clean_up=_forget_import_credentials)]
    if reaped:
        log.warning("Reaped lost source imports: %s", reaped)
    return reaped


def add_git_source(repository: Repository, url: str, ref: str = "", *, user=None,
                   heartbeat: Callable[[], None] | None = None, say: Callable[[str], None] | None = None) -> Source:
    """Clone `url` at `ref` as `user` may and store the checkout; GitError or ArchiveError (nothing stored) when
    refused. A worker's work (it takes up to GIT_TIMEOUT): requests go through `start_git_import`."""
    result = checkout(url, ref, user=user, heartbeat=heartbeat, log=say)
    try:
        with result.tar_path.open("rb") as handle:
            size = size_of(handle)
            stored = store_archive(handle, detect_format(handle), size, Limits.from_settings())
        source = Source.objects.create(
            repository=repository, kind=SourceKind.GIT, archive_format="tar", sha256=stored.sha256, size=size,
            unpacked_size=stored.unpacked_size, file_count=stored.file_count, git_url=redact_url(url.strip()),
            git_ref=ref.strip(), commit=result.commit,
        )
        record(repository.owner, Action.SOURCE_ADDED, target=source, detail={"repository": repository.name})
        return source
    finally:
        result.cleanup()


def delete_source(source: Source) -> None:
    sha256 = source.sha256
    source.delete()
    _forget_blob_if_unused(sha256)


__all__ = ["ArchiveError", "GitError", "RepositoryNameTaken"]
