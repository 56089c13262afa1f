"""Reading the tar a `docker save` streams, shared by the layer analysis (layerfiles.py), the leak check
(leakcheck.py) and the image records (services/images.py, which may need the image config): its members one by
one, the paths they name, and the links the engine writes for a layer that two entries of the manifest share."""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
from collections.abc import Iterable, Iterator

# The image config and manifest.json are small; a bigger member is not one of them.
MAX_CONFIG_BYTES = 16 * 1024 * 1024
# How many small JSON members are held while the config is not known by its name (an OCI layout whose image id
# is not its config's digest): the config is found among them once manifest.json names it.
MAX_HELD_JSON = 64


class SavedImageError(ValueError):
    """The stream is not a readable `docker save` archive of the image; the message says what is wrong."""


class ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks, holding one chunk at a time."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._chunk = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._chunk:
            try:
                self._chunk = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        count = min(len(buffer), len(self._chunk))
        buffer[:count] = self._chunk[:count]
        self._chunk = self._chunk[count:]
        return count


def members(archive: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """Members of a stream-mode tar, without the TarInfo list tarfile keeps (it grows with every member)."""
    while True:
        member = archive.next()
        archive.members.clear()
        if member is None:
            return
        yield member


def archive_path(name: str) -> str:
    """A member's name as a clean relative path ("" for the archive's root)."""
    path = posixpath.normpath("/" + name).lstrip("/")
    return "" if path == "." else path


def resolve_link(path: str, links: dict[str, str]) -> str:
    """Where a chain of links among the archive's members ends (a loop ends where it would repeat)."""
    seen = set()
    while path in links and path not in seen:
        seen.add(path)
        path = links[path]
    return path


def read_config(chunks: Iterable[bytes], image_id: str) -> dict:
    """The image config of `image_id` from its `docker save` stream, read up to the config's member and no further;
    the stream is closed then (when it can be), also on failure.

    The config is named for its digest, which is the image id on engine 20.10 (`<hex>.json`, anywhere among the
    layers: the engine writes members in name order) and in an OCI layout (`blobs/sha256/<hex>`); otherwise
    manifest.json names it. The engine exports the whole image before it sends a byte, so stopping early saves
    the transfer, not the export. Raises SavedImageError."""
    digest = image_id.removeprefix("sha256:")
    names = {f"{digest}.json", f"blobs/sha256/{digest}"}
    held: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=ChunkReader(chunks), mode="r|*") as archive:
            for member in members(archive):
                name = archive_path(member.name)
                if not member.isfile() or member.size > MAX_CONFIG_BYTES:
                    continue
                if name in names:
                    return _json(archive.extractfile(member).read(), name)
                if name == "manifest.json":
                    manifest = _json(archive.extractfile(member).read(), name)
                    config = (manifest[0] or {}).get("Config") if isinstance(manifest, list) and manifest else None
                    names.add(archive_path(str(config or "")))
                    for held_name in names & set(held):
                        return _json(held[held_name], held_name)
                elif len(held) < MAX_HELD_JSON and (name.endswith(".json") or name.startswith("blobs/")):
                    content = archive.extractfile(member)
                    first = content.read(1)
                    if first == b"{":
                        held[name] = first + content.read()
    except tarfile.TarError as exc:
        raise SavedImageError(f"The image archive is truncated or not a readable tar: {exc}") from exc
    finally:
        close = getattr(chunks, "close", None)
        if callable(close):
            close()
    raise SavedImageError(f"The image archive holds no config for {image_id}.")


def _json(data: bytes, name: str):
    try:
        return json.loads(data)
    except ValueError as exc:
        raise SavedImageError(f"The image archive's {name} is not valid JSON.") from exc
