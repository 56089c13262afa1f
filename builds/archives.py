"""Reading uploaded archives safely: tar (plain, gzip, bzip2, xz) and zip, recognised by content.

Uploaded archives are hostile until checked. `read_members` yields each member as a cleaned `Member` and
raises `ArchiveError`, with a message fit for the user, at the first thing that is not allowed: absolute
paths, `..` components, links that leave the root, device files and fifos, names that are not valid text,
more members, bytes or a higher compression ratio than the limits, truncated or corrupt data.
"""

from __future__ import annotations

import lzma
import posixpath
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, BinaryIO

from django.conf import settings

from builds.constants import ArchiveFormat

FILE, DIR, SYMLINK, HARDLINK = "file", "dir", "symlink", "hardlink"


class ArchiveError(Exception):
    """The archive is refused; the message says why."""


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int
    max_unpacked_bytes: int
    max_members: int
    max_ratio: int
    # Below this many unpacked bytes the ratio is not checked: small, repetitive files compress very well.
    ratio_floor_bytes: int

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            max_upload_bytes=settings.CONSOLE_MAX_UPLOAD_BYTES,
            max_unpacked_bytes=settings.CONSOLE_MAX_UNPACKED_BYTES,
            max_members=settings.CONSOLE_MAX_ARCHIVE_MEMBERS,
            max_ratio=settings.CONSOLE_MAX_COMPRESSION_RATIO,
            ratio_floor_bytes=settings.CONSOLE_COMPRESSION_RATIO_FLOOR_BYTES,
        )


@dataclass
class Member:
    """One cleaned archive member. `open()` gives its bytes (files only), valid until the next member."""

    path: str
    kind: str
    size: int
    mode: int
    mtime: int
    linkname: str = ""
    open: object = None


def detect_format(handle: BinaryIO) -> ArchiveFormat:
    """The archive's format from its first bytes, whatever the file is called."""
    head = handle.read(512)
    handle.seek(0)
    if head.startswith(b"\x1f\x8b"):
        return ArchiveFormat.TAR_GZ
    if head.startswith(b"BZh"):
        return ArchiveFormat.TAR_BZ2
    if head.startswith(b"\xfd7zXZ\x00"):
        return ArchiveFormat.TAR_XZ
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return ArchiveFormat.ZIP
    # An all-zero first block is a tar with no members: read_members says it is empty.
    if len(head) == 512 and (head[257:262] == b"ustar" or _is_v7_tar_header(head) or not head.strip(b"\0")):
        return ArchiveFormat.TAR
    if not head:
        raise ArchiveError("The upload is empty.")
    raise ArchiveError("The upload is not an archive: use tar, tar.gz, tar.bz2, tar.xz or zip.")


def _is_v7_tar_header(block: bytes) -> bool:
    try:
        stored = int(block[148:156].split(b"\0", 1)[0].strip() or b"-1", 8)
    except ValueError:
        return False
    return stored == sum(block[:148]) + 256 + sum(block[156:])


def clean_path(raw: str) -> str:
    """A member name made relative and '/'-separated, or ArchiveError when it points outside the root."""
    name = raw.replace("\\", "/") if "\\" in raw and "/" not in raw else raw
    if name.startswith("/") or (len(name) > 1 and name[1] == ":" and name[0].isalpha()):
        raise ArchiveError(f"The archive holds an absolute path: {raw!r}.")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"The archive holds a path with '..': {raw!r}.")
    if any("\0" in part for part in parts):
        raise ArchiveError(f"The archive holds a name with a NUL character: {raw!r}.")
    return "/".join(parts)


def _check_text(raw: str) -> None:
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        printable = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise ArchiveError(f"The archive holds a name that is not valid UTF-8 text: {printable!r}.") from None


def check_symlink(path: str, target: str) -> None:
    if not target:
        raise ArchiveError(f"The symlink {path!r} has no target.")
    if target.startswith("/"):
        raise ArchiveError(f"The symlink {path!r} points outside the archive: {target!r}.")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if resolved == ".." or resolved.startswith("../"):
        raise ArchiveError(f"The symlink {path!r} points outside the archive: {target!r}.")


class _Budget:
    """Counts members and bytes against the limits as the archive is read."""

    def __init__(self, limits: Limits, compressed_size: int, compressed: bool) -> None:
        self.limits = limits
        self.compressed_size = max(compressed_size, 1)
        self.compressed = compressed
        self.members = 0
        self.unpacked = 0

    def add(self, size: int) -> None:
        self.members += 1
        self.unpacked += size
        if self.members > self.limits.max_members:
            raise ArchiveError(f"The archive holds more than {self.limits.max_members:,} members.")
        if self.unpacked > self.limits.max_unpacked_bytes:
            raise ArchiveError(f"The archive unpacks to more than {self.limits.max_unpacked_bytes:,} bytes.")
        if (
            self.compressed
            and self.unpacked > self.limits.ratio_floor_bytes
            and self.unpacked > self.limits.max_ratio * self.compressed_size
        ):
            raise ArchiveError(
                f"The archive expands more than {self.limits.max_ratio} times its compressed size: "
                "it looks like a decompression bomb."
            )


CORRUPT = (tarfile.TarError, EOFError, zlib.error, OSError, lzma.LZMAError, zipfile.BadZipFile, ValueError)


def read_members(handle: BinaryIO, fmt: ArchiveFormat, size: int, limits: Limits) -> Iterator[Member]:
    """Every member of the archive, checked and cleaned, in archive order (streaming: tar is read once)."""
    budget = _Budget(limits, size, compressed=fmt != ArchiveFormat.TAR)
    reader = _read_zip if fmt == ArchiveFormat.ZIP else _read_tar
    try:
        yield from reader(handle, fmt, budget)
    except ArchiveError:
        raise
    except UnicodeDecodeError:
        raise ArchiveError("The archive holds a name that is not valid UTF-8 text.") from None
    except CORRUPT as exc:
        raise ArchiveError(f"The archive is truncated or corrupt ({_short(exc)}).") from None
    if budget.members == 0:
        raise ArchiveError("The archive is empty.")


def _short(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:200]


class _SafeReader:
    """A member's data; damage found while reading it is an ArchiveError like any other."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw

    def read(self, size: int = -1) -> bytes:
        try:
            return self.raw.read(size)
        except CORRUPT as exc:
            raise ArchiveError(f"The archive is truncated or corrupt ({_short(exc)}).") from None

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> _SafeReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _read_tar(handle: BinaryIO, fmt: ArchiveFormat, budget: _Budget) -> Iterator[Member]:
    # Stream mode reads the (possibly compressed) archive once, front to back: memory stays flat.
    with tarfile.open(fileobj=handle, mode="r|*", encoding="utf-8", errors="surrogateescape") as archive:
        for count, info in enumerate(archive, 1):
            if count % 1000 == 0:
                # Stream mode still keeps every TarInfo it has seen; forget them.
                archive.members = []
            _check_text(info.name)
            path = clean_path(info.name)
            if not path:
                if info.isdir():
                    continue
                raise ArchiveError(f"The archive holds a member without a name: {info.name!r}.")
            if info.isdir():
                kind, size, linkname = DIR, 0, ""
            elif info.issym():
                _check_text(info.linkname)
                check_symlink(path, info.linkname)
                kind, size, linkname = SYMLINK, 0, info.linkname
            elif info.islnk():
                _check_text(info.linkname)
                target = clean_path(info.linkname)
                kind, size, linkname = HARDLINK, 0, target
            elif info.issparse():
                raise ArchiveError(f"The archive holds a sparse file, which is not supported: {path!r}.")
            elif info.isreg():
                kind, size, linkname = FILE, info.size, ""
            elif info.ischr() or info.isblk():
                raise ArchiveError(f"The archive holds a device file: {path!r}.")
            elif info.isfifo():
                raise ArchiveError(f"The archive holds a fifo: {path!r}.")
            else:
                raise ArchiveError(f"The archive holds a member of an unsupported type: {path!r}.")
            budget.add(size)
            opener = (lambda info=info: _SafeReader(archive.extractfile(info))) if kind == FILE else None
            yield Member(path, kind, size, info.mode & 0o7777, int(info.mtime), linkname, opener)


def _read_zip(handle: BinaryIO, fmt: ArchiveFormat, budget: _Budget) -> Iterator[Member]:
    with zipfile.ZipFile(handle) as archive:
        for info in archive.infolist():
            _check_text(info.filename)
            path = clean_path(info.filename)
            if not path:
                continue
            unix_mode = info.external_attr >> 16
            mtime = int(datetime(*info.date_time).timestamp()) if info.date_time[0] >= 1980 else 0
            if info.is_dir() or stat.S_ISDIR(unix_mode):
                budget.add(0)
                yield Member(path, DIR, 0, (unix_mode & 0o7777) or 0o755, mtime)
                continue
            if stat.S_ISLNK(unix_mode):
                target = archive.read(info).decode("utf-8")
                check_symlink(path, target)
                budget.add(0)
                yield Member(path, SYMLINK, 0, 0o777, mtime, target)
                continue
            if unix_mode and (stat.S_ISCHR(unix_mode) or stat.S_ISBLK(unix_mode)):
                raise ArchiveError(f"The archive holds a device file: {path!r}.")
            if unix_mode and stat.S_ISFIFO(unix_mode):
                raise ArchiveError(f"The archive holds a fifo: {path!r}.")
            budget.add(info.file_size)
            opener = _zip_opener(archive, info)
            yield Member(path, FILE, info.file_size, (unix_mode & 0o7777) or 0o644, mtime, "", opener)


def _zip_opener(archive: zipfile.ZipFile, info: zipfile.ZipInfo):
    def open_member() -> IO[bytes]:
        return _SafeReader(archive.open(info))

    return open_member
