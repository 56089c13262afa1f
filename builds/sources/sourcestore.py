"""Where sources live: a normalised tar and its index per content hash, through Django's storage API.

On upload every member is checked (builds/sources/archives.py) and written to a plain, uncompressed tar with clean
names and root ownership, and a line per member goes into an index (kind, size, byte range, path). Contexts are
then cut from that tar by copying byte ranges (builds/sources/context.py): no extraction to disk, no decompression,
memory flat whatever the size. Names are `<sha256 of the upload>.tar` and `.index`, so the same bytes uploaded
twice are stored once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages

from builds.sources.archives import DIR, FILE, HARDLINK, SYMLINK, Member

COPY_CHUNK = 1024 * 1024
KIND_TO_TARTYPE = {FILE: tarfile.REGTYPE, DIR: tarfile.DIRTYPE, SYMLINK: tarfile.SYMTYPE, HARDLINK: tarfile.LNKTYPE}


class IndexEntry(NamedTuple):
    """One member of a stored source: its bytes in the stored tar run from `start` (header) to `end`."""

    kind: str
    path: str
    size: int
    mode: int
    mtime: int
    linkname: str
    start: int
    data: int
    end: int


# The index is JSON lines, each line an array of up to this many entries: one json.loads per batch keeps
# reading a 75,000-member index fast, and reading it line by line keeps memory flat.
INDEX_BATCH = 1000


@dataclass(frozen=True)
class StoredSummary:
    file_count: int
    unpacked_size: int


def source_storage() -> Storage:
    return storages["sources"]


def tar_name(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256}.tar"


def index_name(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256}.index"


def is_stored(sha256: str) -> bool:
    storage = source_storage()
    return storage.exists(tar_name(sha256)) and storage.exists(index_name(sha256))


def scratch_dir() -> Path:
    """A private folder inside the data folder for work in progress: nothing is written elsewhere."""
    path = Path(settings.DATA_DIR) / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_of(handle: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    handle.seek(0)
    while chunk := handle.read(COPY_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    handle.seek(0)
    return digest.hexdigest(), size


def store_members(sha256: str, members: Iterable[Member]) -> StoredSummary:
    """Write members to a normalised tar and its index, then move both into storage under `sha256`.

    Nothing reaches storage unless every member was read: an ArchiveError raised by `members` leaves only
    scratch files, which are removed.
    """
    scratch = Path(tempfile.mkdtemp(prefix="source-", dir=scratch_dir()))
    try:
        tar_path, index_path = scratch / "source.tar", scratch / "source.index"
        file_count = unpacked = 0
        with tar_path.open("wb") as raw, index_path.open("w", encoding="utf-8") as index:
            # archive.offset is where the next member's first header starts: the index records it.
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
                seen_folders: set[str] = set()
                batch: list[IndexEntry] = []
                for member in _with_parent_folders(members, seen_folders):
                    info = tarfile.TarInfo(member.path)
                    info.type = KIND_TO_TARTYPE[member.kind]
                    info.mode, info.mtime, info.size = member.mode, member.mtime, member.size
                    info.linkname = member.linkname
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    start = archive.offset
                    if member.kind == FILE:
                        with member.open() as data:
                            archive.addfile(info, data)
                        file_count += 1
                        unpacked += member.size
                    else:
                        if member.kind != DIR:
                            file_count += 1
                        archive.addfile(info)
                    end = archive.offset
                    data_start = end - _padded(member.size) if member.kind == FILE else end
                    batch.append(IndexEntry(member.kind, member.path, member.size, member.mode, member.mtime,
                                            member.linkname, start, data_start, end))
                    if len(batch) == INDEX_BATCH:
                        _write_batch(index, batch)
                _write_batch(index, batch)
        storage = source_storage()
        for local, name in ((tar_path, tar_name(sha256)), (index_path, index_name(sha256))):
            if storage.exists(name):
                storage.delete(name)
            with local.open("rb") as handle:
                storage.save(name, File(handle))
        return StoredSummary(file_count=file_count, unpacked_size=unpacked)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_batch(index, batch: list[IndexEntry]) -> None:
    if batch:
        index.write(json.dumps(batch, ensure_ascii=False, separators=(",", ":")) + "\n")
        batch.clear()


def _with_parent_folders(members: Iterable[Member], seen: set[str]) -> Iterator[Member]:
    """Every member, each preceded by entries for the folders above it that the archive did not list yet.

    The Docker CLI walks a folder on disk, where every folder exists (and is sent even when all it holds is
    left out); archives often list only files. A folder listed after its first file keeps the mode it was
    first given.
    """
    for member in members:
        parts = member.path.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder not in seen:
                seen.add(folder)
                yield Member(folder, DIR, 0, 0o755, member.mtime)
        if member.kind == DIR:
            if member.path in seen:
                continue
            seen.add(member.path)
        yield member


def _padded(size: int) -> int:
    return (size + tarfile.BLOCKSIZE - 1) // tarfile.BLOCKSIZE * tarfile.BLOCKSIZE


def read_index(sha256: str) -> Iterator[IndexEntry]:
    with source_storage().open(index_name(sha256), "rb") as handle:
        for line in handle:
            yield from map(IndexEntry._make, json.loads(line))


def open_tar(sha256: str) -> BinaryIO:
    return source_storage().open(tar_name(sha256), "rb")


def read_file(sha256: str, entry: IndexEntry, limit: int | None = None) -> bytes:
    """The bytes of one stored file (at most `limit`)."""
    with open_tar(sha256) as handle:
        handle.seek(entry.data)
        return handle.read(entry.size if limit is None else min(limit, entry.size))


def delete_unused(sha256: str) -> None:
    storage = source_storage()
    for name in (tar_name(sha256), index_name(sha256)):
        if storage.exists(name):
            storage.delete(name)
