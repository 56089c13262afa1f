"""Where sources live: a normalised tar and its index per content hash, through Django's storage API.

On upload every member is checked (builds/sources/archives.py) and written to a plain, uncompressed tar with clean
names and root ownership, and a line per member goes into an index (kind, size, byte range, path). Contexts are
then cut from that tar by copying byte ranges (builds/sources/context.py): no extraction to disk, no decompression,
memory flat whatever the size. Names are `<sha256 of the upload>.tar` and `.index`, so the same bytes uploaded
twice are stored once.

`store_archive` does it all in one pass over the upload: the bytes are hashed as they are unpacked, checked and
written (builds/sources/archives.py `_Unpacker`), and the finished files are moved into storage, not copied.
"""

from __future__ import annotations

import hashlib
import json
import os
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

from builds.constants import ArchiveFormat
from builds.sources.archives import DIR, FILE, HARDLINK, SYMLINK, ArchiveError, Limits, Member, read_members

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
    # The sha256 of the upload, found in the same pass.
    sha256: str


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


def size_of(handle: BinaryIO) -> int:
    """The upload's size, without reading it."""
    size = handle.seek(0, os.SEEK_END)
    handle.seek(0)
    return size


def store_archive(handle: BinaryIO, fmt: ArchiveFormat, size: int, limits: Limits) -> StoredSummary:
    """Check, normalise, index and hash the upload in one pass, and store it under its sha256.

    ArchiveError when refused: nothing reaches storage unless every member was read (the scratch files are
    removed). An upload stored before (the same sha256) is checked again, with today's limits, and the stored
    copy kept.
    """
    digest = hashlib.sha256()
    scratch = Path(tempfile.mkdtemp(prefix="source-", dir=scratch_dir()))
    try:
        tar_path, index_path = scratch / "source.tar", scratch / "source.index"
        file_count, unpacked = _write_normalised(read_members(handle, fmt, size, limits, digest), tar_path,
                                                 index_path)
        sha256 = digest.hexdigest()
        if not is_stored(sha256):
            _save(sha256, tar_path, index_path)
        return StoredSummary(file_count=file_count, unpacked_size=unpacked, sha256=sha256)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _ScratchFile(File):
    """A finished scratch file: a FileSystemStorage moves it into place (as it does a spooled upload) instead
    of copying it; other backends read it like any file."""

    def temporary_file_path(self) -> str:
        return self.name


def _save(sha256: str, tar_path: Path, index_path: Path) -> None:
    storage = source_storage()
    # The index last: is_stored needs both, so a source is never seen with an index but no tar. Whatever is
    # there already (half of an interrupted save) is replaced, never paired with the new half.
    for local, name in ((tar_path, tar_name(sha256)), (index_path, index_name(sha256))):
        if storage.exists(name):
            storage.delete(name)
        with local.open("rb") as handle:
            storage.save(name, _ScratchFile(handle, name=str(local)))


# The stored tar's end (two zero blocks, then zeros up to a whole record), as tarfile's close() writes it.
def _end_of_archive(offset: int) -> bytes:
    offset += 2 * tarfile.BLOCKSIZE
    return b"\0" * (2 * tarfile.BLOCKSIZE + (-offset % tarfile.RECORDSIZE))


def _write_normalised(members: Iterable[Member], tar_path: Path, index_path: Path) -> tuple[int, int]:
    """The normalised tar and its index in two scratch files; (files, unpacked bytes)."""
    file_count = unpacked = offset = 0
    with tar_path.open("wb", buffering=COPY_CHUNK) as out, index_path.open("w", encoding="utf-8") as index:
        write = out.write
        seen_folders: set[str] = set()
        batch: list[IndexEntry] = []
        for member in _with_parent_folders(members, seen_folders):
            start = offset
            header = member_header(member)
            write(header)
            offset += len(header)
            data_start = offset
            if member.kind == FILE:
                _copy_data(member, write)
                offset += _padded(member.size)
                file_count += 1
                unpacked += member.size
            elif member.kind != DIR:
                file_count += 1
            batch.append(IndexEntry(member.kind, member.path, member.size, member.mode, member.mtime,
                                    member.linkname, start, data_start, offset))
            if len(batch) == INDEX_BATCH:
                _write_batch(index, batch)
        _write_batch(index, batch)
        write(_end_of_archive(offset))
    return file_count, unpacked


def _copy_data(member: Member, write) -> None:
    remaining = member.size
    with member.open() as data:
        while remaining > 0:
            chunk = data.read(min(COPY_CHUNK, remaining))
            if not chunk:
                raise ArchiveError(f"The archive is truncated or corrupt (the data of {member.path!r} ends early).")
            write(chunk)
            remaining -= len(chunk)
    padding = -member.size % tarfile.BLOCKSIZE
    if padding:
        write(b"\0" * padding)


# ustar's name and link fields; longer (or non-ASCII) ones go in a PAX header, as tarfile writes them.
_NAME_FIELD = 100
# The largest size or time an octal ustar field holds (11 digits).
_OCTAL_11 = 8**11


def member_header(member: Member) -> bytes:
    """The member's header in the stored tar: exactly the bytes tarfile's PAX_FORMAT writes for it, built
    directly for the common member (ASCII names that fit ustar's fields), through tarfile for the rest."""
    name = member.path + "/" if member.kind == DIR else member.path
    if (len(name) <= _NAME_FIELD and len(member.linkname) <= _NAME_FIELD and name.isascii()
            and member.linkname.isascii() and 0 <= member.size < _OCTAL_11 and 0 <= member.mtime < _OCTAL_11):
        return _ustar_header(name, KIND_TO_TARTYPE[member.kind], member.mode, member.size, member.mtime,
                             member.linkname)
    info = tarfile.TarInfo(member.path)
    info.type = KIND_TO_TARTYPE[member.kind]
    info.mode, info.mtime, info.size = member.mode, member.mtime, member.size
    info.linkname = member.linkname
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


# Everything after the name and before the checksum's value, for uid = gid = 0.
_IDS = b"0000000\0" * 2


def _ustar_header(name: str, tartype: bytes, mode: int, size: int, mtime: int, linkname: str) -> bytes:
    # Field by field as tarfile's _create_header lays them out (uname, gname, devices and prefix empty).
    head = b"".join((
        name.encode("ascii").ljust(_NAME_FIELD, b"\0"),
        b"%07o\0" % (mode & 0o7777), _IDS, b"%011o\0" % size, b"%011o\0" % mtime,
    ))
    tail = b"".join((tartype, linkname.encode("ascii").ljust(_NAME_FIELD, b"\0"), tarfile.POSIX_MAGIC))
    # The checksum counts its own field as eight spaces; every other byte past `tail` is zero.
    checksum = sum(head) + 8 * 32 + sum(tail)
    return b"".join((head, b"%06o\0 " % checksum, tail, b"\0" * (tarfile.BLOCKSIZE - 156 - len(tail))))


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
