"""Reading the tar a `docker save` streams, shared by the layer analysis (layerfiles.py) and the leak check
(leakcheck.py): its members one by one, the paths they name, and the links the engine writes for a layer that two
entries of the manifest share."""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Iterator


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
