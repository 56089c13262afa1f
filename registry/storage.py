"""What the console's own registry stores, read from its storage folder (Distribution's filesystem driver under
`REGISTRY_DIR/data`): every repository's tags and the manifest each points at, every image's blobs (config and
layers, by digest) and their bytes on disk, and the image's `created` date.

Only reading: whatever changes the registry's content goes through its HTTP API (registry/services/browse.py) or
its own `garbage-collect` (registry/services/gc.py). Reading the folder answers in one pass what the API would
need a request per manifest for, and it sees every repository of every user at once: which blobs other tags share
is a question about the whole registry (a blob is freed only when no manifest anywhere references it).

The layout (Distribution 2.8, `registry/storage/paths.go`):

    docker/registry/v2/blobs/sha256/<2 hex>/<64 hex>/data
    docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/current/link     -> "sha256:..."
    docker/registry/v2/repositories/<name>/_manifests/revisions/sha256/<hex>/link

The folder is Distribution's, but names in it are users' names: links are checked to be digests, symbolic links
are never followed, and a manifest or config larger than the limits below is not read.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.utils.dateparse import parse_datetime

V2 = Path("docker/registry/v2")
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})\Z")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 8 * 1024 * 1024
# An index of indexes is not an image Distribution would accept; one level of children is read.
MAX_DEPTH = 2


@dataclass
class Image:
    """One manifest: the blobs a pull of it fetches (config and layers; for an index, its images'), its date."""

    digest: str
    blobs: frozenset[str] = frozenset()
    created: datetime.datetime | None = None
    readable: bool = True
    # For a multi-platform index: its platforms' manifests.
    children: frozenset[str] = frozenset()


@dataclass
class StorageIndex:
    """The registry at one moment: `tags[repository][tag]` is a manifest digest, `images[digest]` its blobs,
    `sizes[digest]` a blob's bytes on disk."""

    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    images: dict[str, Image] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    def blobs_of(self, repository: str, tags=None) -> set[str]:
        """The blobs of `tags` (all of the repository's when None)."""
        pointed = self.tags.get(repository, {})
        names = pointed if tags is None else [tag for tag in tags if tag in pointed]
        found: set[str] = set()
        for tag in names:
            image = self.images.get(pointed[tag])
            if image is not None:
                found |= image.blobs
        return found

    def tagged_indexes(self) -> list[str]:
        """`repository:tag` of every tag on a multi-platform index."""
        return sorted(f"{name}:{tag}" for name, tags in self.tags.items() for tag, digest in tags.items()
                      if digest in self.images and self.images[digest].children)

    def bytes_of(self, blobs) -> int:
        return sum(self.sizes.get(digest, 0) for digest in blobs)


def data_root(directory: Path | None = None) -> Path:
    """The storage folder of the console's registry (what its config's `rootdirectory` names)."""
    return Path(directory or settings.REGISTRY_DIR) / "data"


def _date(text) -> datetime.datetime | None:
    try:
        moment = parse_datetime(str(text or ""))
    except ValueError:
        return None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment


def _read_link(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return text if _DIGEST.match(text) else None


def _blob_path(root: Path, digest: str) -> Path:
    hex_ = digest.split(":", 1)[1]
    return root / V2 / "blobs" / "sha256" / hex_[:2] / hex_ / "data"


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _repositories(base: Path) -> list[tuple[str, Path]]:
    """(name, folder) of every repository: a folder holding `_manifests`; names nest (`a/b` and `a/b/c`)."""
    found: list[tuple[str, Path]] = []
    stack = [("", base)]
    while stack:
        name, folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not _is_dir(entry):
                continue
            if entry.name == "_manifests" and name:
                found.append((name, folder))
            elif not entry.name.startswith("_"):
                stack.append((f"{name}/{entry.name}" if name else entry.name, Path(entry.path)))
    return sorted(found)


def _tags(folder: Path) -> dict[str, str]:
    tags: dict[str, str] = {}
    base = folder / "_manifests" / "tags"
    try:
        entries = list(os.scandir(base))
    except OSError:
        return tags
    for entry in entries:
        if _is_dir(entry):
            digest = _read_link(Path(entry.path) / "current" / "link")
            if digest:
                tags[entry.name] = digest
    return tags


def _json_blob(root: Path, digest: str, limit: int) -> dict | None:
    path = _blob_path(root, digest)
    try:
        if path.is_symlink() or path.stat().st_size > limit:
            return None
        body = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def _descriptor_digest(value) -> str | None:
    digest = value.get("digest") if isinstance(value, dict) else None
    return digest if isinstance(digest, str) and _DIGEST.match(digest) else None


def read_image(root: Path, digest: str, depth: int = 0) -> Image:
    """The blobs and date of the manifest `digest`; an unreadable one is `readable=False` with no blobs."""
    manifest = _json_blob(root, digest, MAX_MANIFEST_BYTES)
    if manifest is None:
        return Image(digest, readable=False)
    children = manifest.get("manifests")
    if isinstance(children, list):
        if depth + 1 >= MAX_DEPTH:
            return Image(digest, readable=False)
        blobs: set[str] = set()
        dates = []
        readable = True
        digests = set()
        for child in children:
            child_digest = _descriptor_digest(child)
            if child_digest is None:
                continue
            digests.add(child_digest)
            image = read_image(root, child_digest, depth + 1)
            readable = readable and image.readable
            blobs |= image.blobs
            if image.created:
                dates.append(image.created)
        annotations = manifest.get("annotations")
        created = None
        if isinstance(annotations, dict):
            created = _date(annotations.get("org.opencontainers.image.created"))
        return Image(digest, frozenset(blobs), created or (max(dates) if dates else None), readable,
                     frozenset(digests))
    config = _descriptor_digest(manifest.get("config"))
    layers = manifest.get("layers") if isinstance(manifest.get("layers"), list) else []
    blobs = {digest for digest in (config, *(_descriptor_digest(layer) for layer in layers)) if digest}
    created = None
    if config:
        body = _json_blob(root, config, MAX_CONFIG_BYTES)
        if body is not None:
            created = _date(body.get("created"))
    return Image(digest, frozenset(blobs), created, readable=config is not None)


def read_index(directory: Path | None = None) -> StorageIndex:
    """Every repository's tags, their images and the blobs' sizes, as the registry's folder holds them now."""
    root = data_root(directory)
    index = StorageIndex()
    for name, folder in _repositories(root / V2 / "repositories"):
        tags = _tags(folder)
        index.tags[name] = tags
        for digest in tags.values():
            if digest not in index.images:
                index.images[digest] = read_image(root, digest)
    for image in index.images.values():
        for digest in image.blobs:
            if digest not in index.sizes:
                try:
                    index.sizes[digest] = _blob_path(root, digest).stat().st_size
                except OSError:
                    index.sizes[digest] = 0
    return index
