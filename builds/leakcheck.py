"""Where the values of a build's secrets ended up in the image: a search of one `docker save` stream.

Like `builds.layerfiles`, the saved image is read once, as a stream: the outer tar member by member, each layer
tar member by member straight out of it, each file's content in blocks; nothing is written to disk, and what is
held at a time is one block, the overlap kept across its boundary and at most one metadata JSON (up to
`MAX_METADATA_BYTES`; a bigger one is searched as a stream of bytes).
Each secret value is matched as bytes, exactly, in:

- the image config (its env, labels, entrypoint, cmd, the legacy per-layer `json` files, ...) and its history
  (`created_by`, `comment`), as their JSON strings decoded (so a value that JSON escapes is still found) and
  as raw bytes;
- every file of every layer: its content, its name (the whole path), a link's target, its owner names and its
  extended (pax) headers, xattrs included;
- the manifests (manifest.json, index.json, repositories, OCI manifests) and any other member of the archive,
  as bytes.

Both layouts an engine writes are read: engine 20.10's `<id>/layer.tar` with `<id>.json` and manifest.json,
and the OCI layout's `blobs/sha256/<digest>` with index.json (a blob is told apart by its first bytes: a tar, a
gzip-compressed tar, JSON or anything else, which is searched as bytes). A gzip-compressed layer is searched
decompressed, up to `MAX_EXPANSION` times its size; a zstd-compressed one cannot be read here and fails the
check (`LeakCheckError`), as does any stream that is not a readable saved image: a check that could not look
never passes.

The search is a per-value `bytes.find` (CPython's two-way search: linear in the data whatever the value), on
each block and on a window across each block boundary, so work is the image's bytes times the number of
secrets. Nested archives are not opened: a tar inside the image is plain bytes, so a value stored in it
uncompressed is found, but one inside a `.gz`, `.zip`, `.jar` or `.whl` file, or encoded (base64, hex, URL or
UTF-16), transformed, or split across files is not. A value shorter than `MIN_SECRET_LENGTH` bytes would match
nearly anywhere: it is not searched for, and reported as a `TOO_SHORT` result for the caller to refuse.

A result names the secret and where it was found, never the value: a reported path has every secret value in
it replaced by `[NAME]`.
"""

from __future__ import annotations

import gzip
import io
import json
import posixpath
import tarfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from builds import savedimage
from builds.layerfiles import MAX_METADATA_BYTES, READ_BLOCK, ChunkReader

# Bytes; a shorter value is reported as too short to check, never searched for.
MIN_SECRET_LENGTH = 4
# A gzip-compressed layer is read decompressed up to this many times its compressed size (and 1 MiB more).
MAX_EXPANSION = 100
# tarfile's stream buffer: it copies what is left of the buffer on every read, so a 1 MiB buffer makes the
# header reads of small files slow; file contents are still read in READ_BLOCKs.
TAR_BUFFER = 64 * 1024
# Places kept per secret: one is enough to fail a build, a few help to find the cause.
MAX_PLACES_PER_SECRET = 20

LEAK, TOO_SHORT = "leak", "too short to check"
IMAGE_CONFIG, HISTORY, MANIFEST = "image config", "history", "image manifest"
NOT_CHECKED = f"not checked: shorter than {MIN_SECRET_LENGTH} bytes"

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
TAR_MAGIC_OFFSET = 257
TAR_BLOCK = 512
MANIFEST_NAMES = {"manifest.json", "index.json", "repositories", "oci-layout"}


class LeakCheckError(ValueError):
    """The stream could not be searched (not a readable saved image, an unreadable layer): the check failed."""


@dataclass(frozen=True)
class Leak:
    """A secret found in the image (`kind` LEAK), or one too short to check (`kind` TOO_SHORT); never its value.

    `where` is "image config", "history", "image manifest", "layer <n>: <path>" (n counts from 1 in the
    manifest's order; the path may end in "(file name)", "(link target)" or "(file attributes)" when the value
    is there rather than in the content), "archive member <name>", or, for TOO_SHORT, why it was not checked.
    """

    secret: str
    where: str
    kind: str = LEAK

    def message(self) -> str:
        if self.kind == TOO_SHORT:
            return f"The secret {self.secret} is too short to check for leaks (at least {MIN_SECRET_LENGTH} bytes)."
        return f"The secret {self.secret} is in the image: {self.where}."


def find_leaks(saved: Iterable[bytes] | BinaryIO | bytes, secrets: dict[str, str]) -> list[Leak]:
    """Every secret value (name -> value) found in the `docker save` stream `saved`, and each one too short to
    check, as `Leak`s: the too short first, then the places found in the order image config, history, layers
    (in image order), manifests, other members. An empty list means no value was found.

    `saved` is a binary file, an iterable of byte chunks (`console.engine.images.export_image`) or bytes; an
    iterable is consumed and closed (when it can be), even on failure, so that an export stream does not stay
    open; a file is left open for its owner.
    Raises `LeakCheckError` when the stream cannot be searched to its end.
    """
    try:
        needles = _Needles(secrets)
        too_short = [Leak(name, NOT_CHECKED, TOO_SHORT) for name in needles.too_short]
        if not needles.values:
            # Nothing to look for; the stream still closes below.
            return too_short
        if isinstance(saved, bytes | bytearray | memoryview):
            fileobj = io.BytesIO(saved)
        else:
            fileobj = saved if hasattr(saved, "read") else ChunkReader(saved)
        return too_short + _Search(needles).run(fileobj)
    finally:
        close = getattr(saved, "close", None)
        if not hasattr(saved, "read") and callable(close):
            close()


class _Needles:
    """The values to look for, as bytes, and how to search a block or a string for them."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.values: list[tuple[str, bytes]] = []
        self.too_short: list[str] = []
        for name, value in secrets.items():
            raw = value.encode("utf-8", "surrogatepass")
            if len(raw) < MIN_SECRET_LENGTH:
                self.too_short.append(name)
            else:
                self.values.append((name, raw))
        # A match across a block boundary starts in the last len(value) - 1 bytes before it.
        self.overlap = max((len(raw) for _, raw in self.values), default=1) - 1
        # Longest first, so that redacting a value never leaves part of a longer one that contains it.
        self._by_length = sorted(self.values, key=lambda item: len(item[1]), reverse=True)

    def names_in(self, data: bytes, skip: set[str] | frozenset[str] = frozenset()) -> list[str]:
        return [name for name, raw in self.values if name not in skip and raw in data]

    def redact(self, text: str) -> str:
        for name, raw in self._by_length:
            text = text.replace(raw.decode("utf-8", "surrogatepass"), f"[{name}]")
        return text


class _StreamScan:
    """One stream of bytes (a file's content) fed block by block; `found` holds the names matched so far."""

    def __init__(self, needles: _Needles) -> None:
        self.needles = needles
        self.found: set[str] = set()
        self._tail = b""

    def feed(self, block: bytes) -> None:
        if not block or len(self.found) == len(self.needles.values):
            return
        overlap = self.needles.overlap
        window = self._tail + block[:overlap] if self._tail else b""
        for name, raw in self.needles.values:
            if name not in self.found and (raw in block or (window and raw in window)):
                self.found.add(name)
        if overlap:
            self._tail = block[-overlap:] if len(block) >= overlap else (self._tail + block)[-overlap:]

    def read_all(self, fileobj) -> set[str]:
        while block := fileobj.read(READ_BLOCK):
            self.feed(block)
        return self.found


@dataclass
class _Hit:
    secret: str
    # IMAGE_CONFIG, HISTORY, MANIFEST, "layer" or "member".
    category: str
    # The archive path of the layer or member; "" for the config and manifests.
    archive_path: str = ""
    # For a layer: the path in it, with its "(file name)"-like suffix; redacted.
    detail: str = ""


_RANK = {IMAGE_CONFIG: 0, HISTORY: 1, "layer": 2, MANIFEST: 3, "member": 4}


class _Search:
    def __init__(self, needles: _Needles) -> None:
        self.needles = needles
        self.hits: list[_Hit] = []
        self._seen: set[tuple[str, str, str, str]] = set()
        self._count: dict[str, int] = {}
        self.links: dict[str, str] = {}
        self.layer_order: list[str] | None = None
        self.oci_layer_order: list[str] | None = None

    def run(self, fileobj) -> list[Leak]:
        try:
            with tarfile.open(fileobj=fileobj, mode="r|*", bufsize=TAR_BUFFER) as outer:
                for member in savedimage.members(outer):
                    name = savedimage.archive_path(member.name)
                    if member.issym() or member.islnk():
                        # The engine saves a layer that another layer already holds as a link to it.
                        base = posixpath.dirname(name) if member.issym() else ""
                        self.links[name] = posixpath.normpath(posixpath.join(base, member.linkname))
                    elif member.isfile():
                        self._member(name, member.size, outer.extractfile(member))
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise LeakCheckError(f"The image archive is truncated or not a readable tar: {exc}") from exc
        return self._leaks()

    def add(self, names: Iterable[str], category: str, archive_path: str = "", detail: str = "") -> None:
        for name in names:
            key = (name, category, archive_path, detail)
            if key in self._seen or self._count.get(name, 0) >= MAX_PLACES_PER_SECRET:
                continue
            self._seen.add(key)
            self._count[name] = self._count.get(name, 0) + 1
            self.hits.append(_Hit(name, category, archive_path, detail))

    # -- the members of the outer tar ----------------------------------------------------------------------

    def _member(self, name: str, size: int, fileobj) -> None:
        if name.endswith("/layer.tar"):
            self._layer(name, size, _Peeked(fileobj))
        elif name.startswith("blobs/"):
            self._blob(name, size, _Peeked(fileobj))
        elif size <= MAX_METADATA_BYTES:
            self._metadata(name, fileobj.read())
        else:
            self.add(_StreamScan(self.needles).read_all(fileobj), "member", name)

    def _blob(self, name: str, size: int, reader: _Peeked) -> None:
        head = reader.head
        if head.startswith((GZIP_MAGIC, ZSTD_MAGIC)) or _is_tar_header(head):
            self._layer(name, size, reader)
        elif head.lstrip()[:1] in (b"{", b"[") and size <= MAX_METADATA_BYTES:
            self._metadata(name, reader.read())
        else:
            self.add(_StreamScan(self.needles).read_all(reader), "member", name)

    def _metadata(self, name: str, data: bytes) -> None:
        try:
            document = json.loads(data)
        except (ValueError, RecursionError):
            document = None
        base = posixpath.basename(name)
        if name == "manifest.json" and isinstance(document, list):
            self.layer_order = _manifest_layers(document)
        if isinstance(document, dict) and ("history" in document or "rootfs" in document):
            history = document.get("history")
            rest = {key: value for key, value in document.items() if key != "history"}
            self.add(self._names_in_json(history), HISTORY)
            self.add(self._names_in_json(rest), IMAGE_CONFIG)
            # Raw bytes too: a value written in a form the decoded strings do not show (a number, an escape).
            self.add(self.needles.names_in(data, self._found(IMAGE_CONFIG, HISTORY)), IMAGE_CONFIG)
            return
        if isinstance(document, dict) and isinstance(document.get("layers"), list) and self.oci_layer_order is None:
            self.oci_layer_order = [
                f"blobs/{str(layer.get('digest', '')).replace(':', '/', 1)}"
                for layer in document["layers"] if isinstance(layer, dict)
            ]
        if base == "json" and "/" in name:
            # The legacy `<layer id>/json` of engine 20.10 holds a copy of the config: it counts as the config.
            category, archive_path = IMAGE_CONFIG, ""
        elif base in MANIFEST_NAMES or (document is not None and name.startswith("blobs/")):
            category, archive_path = MANIFEST, ""
        else:
            category, archive_path = "member", name
        self.add(self._names_in_json(document), category, archive_path)
        self.add(self.needles.names_in(data), category, archive_path)

    def _found(self, *categories: str) -> set[str]:
        return {hit.secret for hit in self.hits if hit.category in categories and not hit.archive_path}

    def _names_in_json(self, document: object) -> set[str]:
        found: set[str] = set()
        pending = [document]
        while pending:
            item = pending.pop()
            if isinstance(item, dict):
                for key, value in item.items():
                    pending.append(key)
                    pending.append(value)
            elif isinstance(item, list):
                pending.extend(item)
            elif isinstance(item, str):
                found.update(self.needles.names_in(_raw(item), found))
        return found

    # -- one layer tar -------------------------------------------------------------------------------------

    def _layer(self, archive_path: str, size: int, reader: _Peeked) -> None:
        head = reader.head
        if head.startswith(ZSTD_MAGIC):
            raise LeakCheckError(f"The image archive's layer {archive_path} is zstd-compressed: it cannot be checked.")
        source = reader
        if head.startswith(GZIP_MAGIC):
            source = _Bounded(gzip.GzipFile(fileobj=reader, mode="rb"), MAX_EXPANSION * size + READ_BLOCK,
                              archive_path)
        try:
            with tarfile.open(fileobj=source, mode="r|", bufsize=TAR_BUFFER, encoding="utf-8",
                              errors="surrogateescape") as layer:
                for entry in savedimage.members(layer):
                    self._entry(archive_path, layer, entry)
        except tarfile.ReadError as exc:
            raise LeakCheckError(f"The image archive's layer {archive_path} is not a readable tar: {exc}") from exc
        # The rest (end-of-archive padding, a gzip trailer) is read so that the outer stream stays in step.
        while reader.read(READ_BLOCK):
            pass

    def _entry(self, archive_path: str, layer: tarfile.TarFile, entry: tarfile.TarInfo) -> None:
        fields = [(entry.name, "file name")]
        if entry.issym() or entry.islnk():
            fields.append((entry.linkname, "link target"))
        for attribute in (entry.uname, entry.gname, *entry.pax_headers.keys(), *entry.pax_headers.values()):
            fields.append((attribute, "file attributes"))
        found: list[tuple[set[str], str]] = []
        # One search of all the fields at once (most entries hold no value), then each field where one did.
        if self.needles.names_in(b"\0".join(_raw(text) for text, _ in fields)):
            found = [(set(self.needles.names_in(_raw(text))), what) for text, what in fields if text]
        content: set[str] = set()
        if entry.isreg() and entry.size:
            content = _StreamScan(self.needles).read_all(layer.extractfile(entry))
        if not content and not any(names for names, _ in found):
            return
        path = self.needles.redact(savedimage.archive_path(entry.name) or entry.name)
        self.add(content, "layer", archive_path, path)
        for names, what in found:
            self.add(names, "layer", archive_path, f"{path} ({what})")

    # -- the answer ----------------------------------------------------------------------------------------

    def _leaks(self) -> list[Leak]:
        numbers = self._layer_numbers()

        def where(hit: _Hit) -> tuple[tuple[int, int, str, str], str]:
            if hit.category == "layer":
                number = numbers.get(hit.archive_path)
                label = f"layer {number}" if number else f"layer {hit.archive_path}"
                return (_RANK["layer"], number or 1 << 30, hit.detail, hit.secret), f"{label}: {hit.detail}"
            if hit.category == "member":
                return (_RANK["member"], 0, hit.archive_path, hit.secret), f"archive member {hit.archive_path}"
            return (_RANK[hit.category], 0, "", hit.secret), hit.category

        placed = sorted((where(hit), hit.secret) for hit in self.hits)
        return [Leak(secret, label) for (_, label), secret in placed]

    def _layer_numbers(self) -> dict[str, int]:
        """Archive path of each layer's content -> its number in the image (from 1, the base layer)."""
        order = self.layer_order if self.layer_order is not None else self.oci_layer_order
        numbers: dict[str, int] = {}
        for index, path in enumerate(order or [], start=1):
            numbers.setdefault(savedimage.resolve_link(savedimage.archive_path(path), self.links), index)
        return numbers


class _Peeked:
    """A file whose first block is read ahead (`head`), to tell a tar from gzip, zstd or JSON by its magic."""

    def __init__(self, raw) -> None:
        self.raw = raw
        head = b""
        while len(head) < TAR_BLOCK and (more := raw.read(TAR_BLOCK - len(head))):
            head += more
        self.head = head
        self._pending = head

    def read(self, size: int = -1) -> bytes:
        if self._pending:
            if size is None or size < 0:
                data, self._pending = self._pending + self.raw.read(), b""
                return data
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        return self.raw.read(size)


class _Bounded:
    """Passes reads through, failing the check once more than `limit` bytes came out (a gzip bomb)."""

    def __init__(self, raw, limit: int, archive_path: str) -> None:
        self.raw = raw
        self.limit = limit
        self.archive_path = archive_path
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        if self.count > self.limit:
            raise LeakCheckError(
                f"The image archive's layer {self.archive_path} decompresses to more than {MAX_EXPANSION} times "
                "its size: it is not checked."
            )
        return data


def _is_tar_header(head: bytes) -> bool:
    if len(head) < TAR_BLOCK:
        return False
    # An empty layer is the end-of-archive marker alone: zero blocks.
    return head[TAR_MAGIC_OFFSET:TAR_MAGIC_OFFSET + 5] == b"ustar" or head == bytes(TAR_BLOCK)


def _manifest_layers(manifest: list) -> list[str] | None:
    if not manifest or not isinstance(manifest[0], dict):
        return None
    layers = manifest[0].get("Layers")
    if not isinstance(layers, list):
        return None
    return [path for path in layers if isinstance(path, str)]


def _raw(text: str) -> bytes:
    """A tar's or JSON's string as the bytes it was read from (names that are not UTF-8 kept as they were)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")
