"""Reading uploaded archives safely: tar (plain, gzip, bzip2, xz) and zip, recognised by content.

Uploaded archives are hostile until checked. `read_members` yields each member as a cleaned `Member` and
raises `ArchiveError`, with a message fit for the user, at the first thing that is not allowed: absolute
paths, `..` components, links that leave the root, device files and fifos, names that are not valid text,
more members, bytes or a higher compression ratio than the limits, truncated or corrupt data.

Everything the reader has to hold counts against the limits, not only file contents: link targets, tar
extension headers (PAX records, GNU long names) and zip extra fields are unpacked bytes too, so a small upload
cannot make the reader hold a big one in memory. Symlinks are resolved once the whole archive is read, the way
the kernel will follow them in a container (through other symlinks, `..` after each), not by their text alone.
"""

from __future__ import annotations

import bz2
import lzma
import posixpath
import queue
import stat
import tarfile
import threading
import zipfile
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, BinaryIO, Protocol

from django.conf import settings

from builds.constants import ArchiveFormat
from console.errors import DomainError

FILE, DIR, SYMLINK, HARDLINK = "file", "dir", "symlink", "hardlink"

# Linux's PATH_MAX: a longer member name or link target cannot be created or followed in a container anyway.
MAX_PATH_BYTES = 4096
# One tar extension header (a PAX record set, a GNU long name or long link) is read whole into memory by tarfile;
# real ones hold a name, a link target and a few attributes (xattrs are at most 64 KiB each on Linux).
MAX_EXTENSION_HEADER_BYTES = 256 * 1024
# Extension headers in a row before one member: tarfile reads each chain by recursion.
MAX_EXTENSION_HEADERS_IN_A_ROW = 8
# Linux's MAXSYMLINKS: the kernel gives up (ELOOP) after following this many symlinks in one lookup.
MAX_SYMLINK_HOPS = 40
# Work allowed to resolve all the archive's symlinks (one step per path component looked at); real trees need a
# few per link, so only an archive built to be slow to check reaches it.
MAX_SYMLINK_STEPS = 2_000_000
# Link targets kept in memory until the whole archive is read and they can be resolved.
MAX_SYMLINK_TARGET_BYTES = 64 * 1024 * 1024
_TAR_EXTENSION_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                        tarfile.SOLARIS_XHDTYPE)


# The upload is read, hashed and decompressed in blocks this big, by a thread running at most UNPACK_AHEAD
# blocks ahead of the tar reader: zlib, bz2, lzma and hashlib let go of the GIL on big blocks, so the two
# overlap, and memory stays at a few blocks whatever the archive holds.
RAW_BLOCK = 1024 * 1024
UNPACKED_BLOCK = 1024 * 1024
UNPACK_AHEAD = 4
# After the tar's end-of-archive blocks, this much more of the compressed stream is still unpacked to check it
# ends whole (a truncated gzip is refused); past it the rest is only hashed, so a bomb there costs no time.
MAX_UNPACKED_TAIL = 16 * 1024 * 1024


class Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...


class ArchiveError(DomainError):
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


def check_path_length(path: str, what: str = "path") -> None:
    length = len(path.encode("utf-8", "surrogateescape"))
    if length > MAX_PATH_BYTES:
        raise ArchiveError(f"The archive holds a {what} of {length:,} bytes, longer than the {MAX_PATH_BYTES:,} "
                           f"bytes Linux allows: {path[:80]!r}...")


def check_symlink(path: str, target: str) -> None:
    """The checks one symlink passes on its own (its chain through other links is checked by `SymlinkTable`)."""
    if not target:
        raise ArchiveError(f"The symlink {path!r} has no target.")
    check_path_length(target, "symlink target")
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
        """One member holding `size` unpacked bytes (its data, link target and metadata)."""
        self.members += 1
        if self.members > self.limits.max_members:
            raise ArchiveError(f"The archive holds more than {self.limits.max_members:,} members.")
        self.charge(size)

    def charge(self, size: int) -> None:
        """Bytes the reader unpacks that are not a member of their own (a tar extension header)."""
        self.unpacked += size
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


class _LinkNode:
    """A path component in the tree of the archive's symlinks; `target` is set where a symlink ends."""

    __slots__ = ("children", "target")

    def __init__(self) -> None:
        self.children: dict[str, _LinkNode] = {}
        self.target: str | None = None


class SymlinkTable:
    """The archive's symlinks as they are once it is unpacked, resolved the way the kernel follows them.

    A symlink's text alone says little: `a -> b/../..` stays inside unless `b` is itself a link, in which case
    the `..` climbs from wherever `b` leads. So every member is recorded as it is read (a later member replaces
    an earlier one of the same name, as when unpacking), and `check()` then follows each link component by
    component through the others, refusing a link that leaves the root, and chains that loop or exceed the
    kernel's own limit. A member stored inside a symlinked folder is refused too: unpacking would write it
    wherever that link points, and with that rule every link's own folder is a real folder.
    """

    def __init__(self) -> None:
        self._root = _LinkNode()
        self._links: dict[str, str] = {}
        self._folders: set[str] = set()
        self._target_bytes = 0

    def record(self, member: Member) -> None:
        folder = member.path.rpartition("/")[0]
        # Each member's folders, up to the first one already known (whose own folders are known then too).
        while folder and folder not in self._folders:
            self._folders.add(folder)
            folder = folder.rpartition("/")[0]
        if member.kind == SYMLINK:
            self._target_bytes += len(member.linkname)
            if self._target_bytes > MAX_SYMLINK_TARGET_BYTES:
                raise ArchiveError(f"The archive's symlink targets add up to more than "
                                   f"{MAX_SYMLINK_TARGET_BYTES:,} bytes.")
            node = self._root
            for part in member.path.split("/"):
                node = node.children.setdefault(part, _LinkNode())
            node.target = member.linkname
            self._links[member.path] = member.linkname
        elif member.path in self._links:
            del self._links[member.path]
            self._node(member.path).target = None

    def _node(self, path: str) -> _LinkNode:
        node = self._root
        for part in path.split("/"):
            node = node.children[part]
        return node

    def check(self) -> None:
        """Refuse the archive if any symlink, followed through the others, leads outside it or never ends."""
        steps = 0
        for path, target in self._links.items():
            if path in self._folders:
                raise ArchiveError(f"The archive holds members inside the symlink {path!r}: unpacking would "
                                   "write them wherever it points.")
            steps = self._resolve(path, target, steps)

    def _resolve(self, path: str, target: str, steps: int) -> int:
        # The link's folder holds no symlink (see record), so the walk starts from its real nodes.
        stack: list[_LinkNode | None] = []
        node: _LinkNode | None = self._root
        folder_parts = path.split("/")[:-1]
        steps += len(folder_parts)
        for part in folder_parts:
            node = node.children.get(part) if node is not None else None
            stack.append(node)
        parts = deque(target.split("/"))
        hops = 1
        while parts:
            steps += 1
            if steps > MAX_SYMLINK_STEPS:
                raise ArchiveError("The archive's symlinks take too many steps to check "
                                   f"(more than {MAX_SYMLINK_STEPS:,}): too many links, or links through links.")
            part = parts.popleft()
            if part in ("", "."):
                continue
            if part == "..":
                if not stack:
                    raise ArchiveError(f"The symlink {path!r} points outside the archive: {target!r} leads above "
                                       "its root once the links it goes through are followed.")
                stack.pop()
                continue
            parent = stack[-1] if stack else self._root
            child = parent.children.get(part) if parent is not None else None
            if child is not None and child.target is not None:
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise ArchiveError(f"The symlink {path!r} cannot be resolved: following {target!r} loops or "
                                       f"goes through more than {MAX_SYMLINK_HOPS} symlinks.")
                # Absolute targets were refused when read; this one is relative to the folder the link is in.
                parts.extendleft(reversed(child.target.split("/")))
                continue
            stack.append(child)
        return steps


CORRUPT = (tarfile.TarError, EOFError, zlib.error, OSError, lzma.LZMAError, zipfile.BadZipFile, ValueError)


def read_members(handle: BinaryIO, fmt: ArchiveFormat, size: int, limits: Limits,
                 digest: Hash | None = None) -> Iterator[Member]:
    """Every member of the archive, checked and cleaned, in archive order (streaming: tar is read once).

    With `digest`, every byte of the upload (past the archive's end too) goes through it by the time the last
    member is yielded: a tar is hashed in the same pass that unpacks it, a zip (read by random access) first.
    """
    budget = _Budget(limits, size, compressed=fmt != ArchiveFormat.TAR)
    links = SymlinkTable()
    if fmt == ArchiveFormat.ZIP:
        if digest is not None:
            _hash_all(handle, digest)
        members = _read_zip(handle, fmt, budget)
    else:
        members = _read_tar(handle, fmt, budget, digest)
    try:
        for member in members:
            check_path_length(member.path)
            links.record(member)
            yield member
    except ArchiveError:
        raise
    except UnicodeDecodeError:
        raise ArchiveError("The archive holds a name that is not valid UTF-8 text.") from None
    except RecursionError:
        raise ArchiveError("The archive nests its headers too deeply to read.") from None
    except CORRUPT as exc:
        raise ArchiveError(f"The archive is truncated or corrupt ({_short(exc)}).") from None
    if budget.members == 0:
        raise ArchiveError("The archive is empty.")
    # Raised after the last member but before the caller's loop ends: store_archive keeps nothing.
    links.check()


def _hash_all(handle: BinaryIO, digest: Hash) -> None:
    handle.seek(0)
    while chunk := handle.read(RAW_BLOCK):
        digest.update(chunk)
    handle.seek(0)


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


class _StreamedData:
    """A regular member's data, read straight from the stream the tar reader is on (in stream mode it stands at
    the member's data until the next member is asked for): extractfile's buffered file object per member costs
    more than small files take to copy. Short data is an error, as tarfile's own reader makes it."""

    def __init__(self, archive: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        self._stream = archive.fileobj
        if self._stream.tell() != info.offset_data:
            raise tarfile.ReadError("a member's data was read out of order")
        self._remaining = info.size
        self._padding = -info.size % tarfile.BLOCKSIZE

    def read(self, size: int = -1) -> bytes:
        wanted = self._remaining if size < 0 else min(size, self._remaining)
        if wanted <= 0:
            return b""
        data = self._stream.read(wanted)
        if len(data) != wanted:
            raise tarfile.ReadError("unexpected end of data")
        self._remaining -= wanted
        if not self._remaining and self._padding:
            # Past the padding too, the stream stands where the reader looks for the next header: it need not
            # seek there (two more reads per member). Short padding is found by the reader as before.
            self._stream.read(self._padding)
        return data

    def close(self) -> None:
        self._remaining = 0


_END = object()


class _Unpacker:
    """The tar inside an upload (gzip, bzip2, xz or none), as a file the tar reader reads front to back.

    A thread reads the upload in big blocks, passes each through `digest` and the decompressor and queues what
    comes out, a few blocks ahead; so the upload is read once, and hashing and decompression run beside the tar
    reader instead of between its reads. Errors of the thread come out of `read` or `finish` in the caller's.
    """

    def __init__(self, handle: BinaryIO, fmt: ArchiveFormat, digest: Hash | None) -> None:
        self._handle, self._fmt, self._digest = handle, fmt, digest
        if digest is not None:
            # The hash is of the whole upload, wherever the caller left the handle.
            handle.seek(0)
        self._blocks: queue.Queue = queue.Queue(maxsize=UNPACK_AHEAD)
        # Set by the reader once the tar has ended: what follows is checked, and then only hashed.
        self._tar_done = threading.Event()
        # Set when the reader gives up: the thread stops at its next block.
        self._closed = threading.Event()
        self._current, self._position, self._ended = b"", 0, False
        self._thread = threading.Thread(target=self._run, name="archive-unpacker", daemon=True)
        self._thread.start()

    # The reader's side.
    def read(self, size: int = -1) -> bytes:
        if self._position >= len(self._current):
            if self._ended:
                return b""
            item = self._blocks.get()
            if item is _END:
                self._ended = True
                return b""
            if isinstance(item, BaseException):
                self._ended = True
                raise item
            self._current, self._position = item, 0
        end = len(self._current) if size < 0 else self._position + size
        chunk = self._current[self._position : end]
        self._position += len(chunk)
        return chunk

    def finish(self) -> None:
        """Once the tar has ended: let the thread hash the rest and check the compressed stream ends whole."""
        self._tar_done.set()
        while not self._ended:
            item = self._blocks.get()
            if item is _END:
                self._ended = True
            elif isinstance(item, BaseException):
                self._ended = True
                raise item
        self._thread.join()

    def close(self) -> None:
        self._closed.set()
        while self._thread.is_alive():
            try:
                self._blocks.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()

    # The thread's side.
    def _put(self, item: object) -> None:
        while not self._closed.is_set():
            try:
                self._blocks.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        try:
            unpack, stream_ended = _decompressor(self._fmt)
            tail = 0
            while True:
                if self._closed.is_set():
                    return
                raw = self._handle.read(RAW_BLOCK)
                if not raw:
                    break
                if self._digest is not None:
                    self._digest.update(raw)
                if (stream_ended is not None and stream_ended()) or tail > MAX_UNPACKED_TAIL:
                    continue
                for block in unpack(raw):
                    if not self._tar_done.is_set():
                        self._put(block)
                        continue
                    tail += len(block)
                    if tail > MAX_UNPACKED_TAIL:
                        break
            if tail <= MAX_UNPACKED_TAIL:
                for block in unpack(None):
                    if not self._tar_done.is_set():
                        self._put(block)
                if stream_ended is not None and not stream_ended():
                    raise EOFError("the compressed data ends before its end marker")
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, which raises it
            self._put(exc)


def _decompressor(fmt: ArchiveFormat):
    """(unpack, ended) for the format: `unpack(raw)` yields its output in blocks of at most UNPACKED_BLOCK (so a
    bomb is never held whole), `unpack(None)` what is left at the end of the input; `ended()` says the
    compressed stream reached its end marker (what follows it is not read, as tar's own reader never did), and
    is None for a plain tar, which has no such marker."""
    if fmt == ArchiveFormat.TAR:
        def unpack_plain(raw: bytes | None) -> Iterator[bytes]:
            if raw:
                yield raw

        return unpack_plain, None
    if fmt == ArchiveFormat.TAR_GZ:
        # 16 + MAX_WBITS: a gzip wrapper, its header and CRC checked by zlib.
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)

        def unpack_gzip(raw: bytes | None) -> Iterator[bytes]:
            if raw is None:
                if not inflater.eof:
                    rest = inflater.flush()
                    if rest:
                        yield rest
                return
            out = inflater.decompress(raw, UNPACKED_BLOCK)
            while True:
                if out:
                    yield out
                if inflater.eof or not inflater.unconsumed_tail:
                    return
                out = inflater.decompress(inflater.unconsumed_tail, UNPACKED_BLOCK)

        return unpack_gzip, lambda: inflater.eof
    other = bz2.BZ2Decompressor() if fmt == ArchiveFormat.TAR_BZ2 else lzma.LZMADecompressor()

    def unpack_other(raw: bytes | None) -> Iterator[bytes]:
        if raw is None:
            return
        out = other.decompress(raw, UNPACKED_BLOCK)
        while True:
            if out:
                yield out
            if other.eof or other.needs_input:
                return
            out = other.decompress(b"", UNPACKED_BLOCK)

    return unpack_other, lambda: other.eof


def _counting_tarinfo(budget: _Budget) -> type[tarfile.TarInfo]:
    """A TarInfo that charges extension headers to the budget before tarfile reads them whole into memory."""
    in_a_row = 0

    class CountingTarInfo(tarfile.TarInfo):
        def _proc_member(self, archive: tarfile.TarFile) -> tarfile.TarInfo:
            nonlocal in_a_row
            if self.type == tarfile.GNUTYPE_SPARSE:
                # Its extension blocks are read in a loop with no end but the data's.
                raise ArchiveError(f"The archive holds a sparse file, which is not supported: {self.name!r}.")
            if self.type not in _TAR_EXTENSION_TYPES:
                return super()._proc_member(archive)
            if self.size > MAX_EXTENSION_HEADER_BYTES:
                raise ArchiveError(f"The archive holds a tar extension header of {self.size:,} bytes "
                                   f"(at most {MAX_EXTENSION_HEADER_BYTES:,} are allowed).")
            budget.charge(self.size)
            in_a_row += 1
            try:
                if in_a_row > MAX_EXTENSION_HEADERS_IN_A_ROW:
                    raise ArchiveError(f"The archive holds more than {MAX_EXTENSION_HEADERS_IN_A_ROW} tar "
                                       "extension headers in a row.")
                return super()._proc_member(archive)
            finally:
                in_a_row -= 1

    return CountingTarInfo


def _link_bytes(linkname: str) -> int:
    return len(linkname.encode("utf-8", "surrogateescape"))


def _read_tar(handle: BinaryIO, fmt: ArchiveFormat, budget: _Budget, digest: Hash | None) -> Iterator[Member]:
    # Stream mode reads the archive once, front to back, from the unpacker's bounded blocks: memory stays flat.
    unpacked = _Unpacker(handle, fmt, digest)
    try:
        with tarfile.open(fileobj=unpacked, mode="r|", encoding="utf-8", errors="surrogateescape",
                          tarinfo=_counting_tarinfo(budget)) as archive:
            yield from _tar_members(archive, budget)
        unpacked.finish()
    finally:
        unpacked.close()


def _tar_members(archive: tarfile.TarFile, budget: _Budget) -> Iterator[Member]:
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
            check_path_length(info.linkname, "hard link target")
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
        # A link's target is unpacked bytes too: it is kept, stored and sent like file data.
        budget.add(size + _link_bytes(linkname))
        opener = (lambda info=info: _SafeReader(_StreamedData(archive, info))) if kind == FILE else None
        yield Member(path, kind, size, info.mode & 0o7777, int(info.mtime), linkname, opener)


def _read_zip(handle: BinaryIO, fmt: ArchiveFormat, budget: _Budget) -> Iterator[Member]:
    with zipfile.ZipFile(handle) as archive:
        for info in archive.infolist():
            _check_text(info.filename)
            path = clean_path(info.filename)
            # The central directory's extra field and comment: read into memory with the member's entry.
            metadata = len(info.extra) + len(info.comment)
            if not path:
                budget.charge(metadata)
                continue
            unix_mode = info.external_attr >> 16
            mtime = int(datetime(*info.date_time).timestamp()) if info.date_time[0] >= 1980 else 0
            if info.is_dir() or stat.S_ISDIR(unix_mode):
                budget.add(metadata)
                yield Member(path, DIR, 0, (unix_mode & 0o7777) or 0o755, mtime)
                continue
            if stat.S_ISLNK(unix_mode):
                # A symlink's target is its member's body: charge all of it as declared, read no more than a
                # target may hold.
                budget.add(info.file_size + metadata)
                with archive.open(info) as body:
                    raw = body.read(MAX_PATH_BYTES + 1)
                if len(raw) > MAX_PATH_BYTES:
                    raise ArchiveError(f"The archive holds a symlink target longer than the {MAX_PATH_BYTES:,} "
                                       f"bytes Linux allows: {path!r}.")
                target = raw.decode("utf-8")
                check_symlink(path, target)
                yield Member(path, SYMLINK, 0, 0o777, mtime, target)
                continue
            if unix_mode and (stat.S_ISCHR(unix_mode) or stat.S_ISBLK(unix_mode)):
                raise ArchiveError(f"The archive holds a device file: {path!r}.")
            if unix_mode and stat.S_ISFIFO(unix_mode):
                raise ArchiveError(f"The archive holds a fifo: {path!r}.")
            budget.add(info.file_size + metadata)
            opener = _zip_opener(archive, info)
            yield Member(path, FILE, info.file_size, (unix_mode & 0o7777) or 0o644, mtime, "", opener)


def _zip_opener(archive: zipfile.ZipFile, info: zipfile.ZipInfo):
    def open_member() -> IO[bytes]:
        return _SafeReader(archive.open(info))

    return open_member
