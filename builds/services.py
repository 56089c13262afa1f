"""Repositories and sources: one function per action, called by the browser views and the API alike."""

from __future__ import annotations

from typing import BinaryIO

from django.db import IntegrityError, transaction

from builds.archives import ArchiveError, Limits, detect_format, read_members
from builds.constants import SourceKind
from builds.git import GitError, checkout, redact_url
from builds.models import Repository, Source
from builds.sourcestore import delete_unused, is_stored, sha256_of, store_members
from console.audit.constants import Action
from console.audit.services import record


class RepositoryNameTaken(Exception):
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
    """Check an uploaded archive and store it once per content; ArchiveError (nothing stored) when refused."""
    limits = Limits.from_settings()
    sha256, size = sha256_of(upload)
    if size > limits.max_upload_bytes:
        raise ArchiveError(f"The upload is larger than {limits.max_upload_bytes:,} bytes.")
    fmt = detect_format(upload)
    summary = _existing_summary(sha256)
    if summary is None:
        stored = store_members(sha256, read_members(upload, fmt, size, limits))
        summary = (stored.file_count, stored.unpacked_size)
    source = Source.objects.create(
        repository=repository, kind=SourceKind.ARCHIVE, archive_format=fmt, sha256=sha256, size=size,
        unpacked_size=summary[1], file_count=summary[0], filename=filename[:255],
    )
    record(repository.owner, Action.SOURCE_ADDED, target=source, detail={"repository": repository.name})
    return source


def _existing_summary(sha256: str) -> tuple[int, int] | None:
    """The counts of an identical source stored before: the same bytes are not read or stored twice."""
    if not is_stored(sha256):
        return None
    return Source.objects.filter(sha256=sha256).values_list("file_count", "unpacked_size").first()


def add_git_source(repository: Repository, url: str, ref: str = "") -> Source:
    """Clone `url` at `ref` and store the checkout; GitError or ArchiveError (nothing stored) when refused."""
    result = checkout(url, ref)
    try:
        with result.tar_path.open("rb") as handle:
            sha256, size = sha256_of(handle)
            summary = _existing_summary(sha256)
            if summary is None:
                stored = store_members(sha256, read_members(handle, detect_format(handle), size,
                                                            Limits.from_settings()))
                summary = (stored.file_count, stored.unpacked_size)
        source = Source.objects.create(
            repository=repository, kind=SourceKind.GIT, archive_format="tar", sha256=sha256, size=size,
            unpacked_size=summary[1], file_count=summary[0], git_url=redact_url(url.strip()),
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
