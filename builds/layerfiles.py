"""What each layer of an image changes in its file system, read from the `docker save` stream.

The saved image is read once, as a stream, and never written to disk or held in memory: the outer tar holds
one `<layer id>/layer.tar` per layer (engine 20.10) and a manifest.json that lists them in order, and each
layer tar is itself read member by member straight out of the outer stream while its sha256 (the layer's
diff_id) is computed. Only paths, types and sizes are kept. The manifest usually comes after the layers (the
engine writes the members in name order), so each layer's entries are kept under its path in the archive and
compared with the earlier layers only at the end, in the manifest's order.

Each added or modified path keeps its permission bits (`mode`, an int) and, for a link, its target (`link`),
which image comparison reads (builds/services/compare.py). Overlay semantics: a path is `modified` when it was
present before the layer, `added` otherwise; a whiteout
`.wh.<name>` removes `<name>` and everything under it; `.wh..wh..opq` makes its folder opaque, removing what
the earlier layers had under it. Bytes of a file version that a later layer overwrites or removes are wasted.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

# ChunkReader is savedimage's; it is imported from here too (builds/leakcheck.py).
from builds import packagedb
from builds.packagedb import FoundPackage, MergedPackages
from builds.savedimage import ChunkReader, archive_path, members, resolve_link

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
# Read the tars in big blocks: tarfile's default (10 KiB) makes skipping file contents needlessly slow.
READ_BLOCK = 1024 * 1024
# manifest.json and the image config are small; anything bigger is not a saved image.
MAX_METADATA_BYTES = 16 * 1024 * 1024

ADDED, MODIFIED, REMOVED = "added", "modified", "removed"
FILE, DIR, SYMLINK, HARDLINK, OTHER = "file", "dir", "symlink", "hardlink", "other"

class LayerAnalysisError(ValueError):
    """The stream is not a readable `docker save` archive; the message says what is wrong with it."""


@dataclass
class LayerAnalysis:
    """One layer, in image order: its diff_id, its tar's size, the bytes of its files, and its changes."""

    diff_id: str
    archive_path: str
    tar_size: int
    size: int
    changes: list[dict[str, object]]

    def as_dict(self) -> dict[str, object]:
        return {"diff_id": self.diff_id, "archive_path": self.archive_path, "tar_size": self.tar_size,
                "size": self.size, "changes": self.changes}


@dataclass
class ImageAnalysis:
    layers: list[LayerAnalysis]
    total_size: int
    wasted_bytes: int
    efficiency: float
    repo_tags: list[str] = field(default_factory=list)
    # Per history entry of the image config, oldest first: True where the entry made no layer. What the record's
    # layers are checked against (builds/services/analysis.py); None when the archive had no config.
    empty_layers: list[bool] | None = None
    # The installed packages of the top of the image (builds/packagedb.py) and its os-release fields.
    packages: list[FoundPackage] = field(default_factory=list)
    os_release: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"layers": [layer.as_dict() for layer in self.layers], "total_size": self.total_size,
                "wasted_bytes": self.wasted_bytes, "efficiency": self.efficiency, "repo_tags": self.repo_tags}


@dataclass
class _LayerRecord:
    """What one layer tar holds, before it is compared with the layers under it."""

    diff_id: str
    tar_size: int
    # path -> (type, size, permission bits, link target or ""); the last entry wins when a tar names a path twice.
    entries: dict[str, tuple[str, int, int, str]]
    duplicate_bytes: int
    whiteouts: list[str]
    opaque_dirs: list[str]
    # path -> (reader kind, what it gave; None where the path is not a regular file this layer could read).
    package_files: dict[str, tuple[str, packagedb.FileContent | None]] = field(default_factory=dict)


class _HashingReader:
    """Passes reads through, hashing and counting every byte, so a layer's diff_id costs no second pass."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(READ_BLOCK):
            pass


def analyse_saved_image(chunks: Iterable[bytes]) -> ImageAnalysis:
    """Per-layer file changes, total size, wasted bytes and efficiency of the image in a `docker save` stream.

    Consumes `chunks` and closes it (when it can be closed) even on failure, so that an export stream from the
    engine does not stay open behind an error.
    """
    try:
        return _analyse_stream(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if callable(close):
            close()


def _analyse_stream(chunks: Iterable[bytes]) -> ImageAnalysis:
    records: dict[str, _LayerRecord] = {}
    budget = packagedb.Budget()
    links: dict[str, str] = {}
    small_json: dict[str, bytes] = {}
    manifest: list | None = None
    try:
        with tarfile.open(fileobj=ChunkReader(chunks), mode="r|*", bufsize=READ_BLOCK) as outer:
            for member in members(outer):
                name = archive_path(member.name)
                if member.issym() or member.islnk():
                    # The engine saves a layer whose content another layer already has as a link to it.
                    base = posixpath.dirname(name) if member.issym() else ""
                    links[name] = posixpath.normpath(posixpath.join(base, member.linkname))
                elif not member.isfile():
                    continue
                elif name == "manifest.json":
                    manifest = _read_json(outer, member)
                elif name.endswith(".json") and "/" not in name and member.size <= MAX_METADATA_BYTES:
                    small_json[name] = outer.extractfile(member).read()
                elif name.endswith("/layer.tar") or name.startswith("blobs/"):
                    record = _read_layer(outer, member, budget)
                    if record is not None:
                        records[name] = record
    except tarfile.TarError as exc:
        raise LayerAnalysisError(f"The image archive is truncated or not a readable tar: {exc}") from exc
    return _analyse(manifest, records, links, small_json)


def _read_json(outer: tarfile.TarFile, member: tarfile.TarInfo):
    if member.size > MAX_METADATA_BYTES:
        raise LayerAnalysisError(f"The image archive's {member.name} is too large to be a manifest.")
    try:
        return json.loads(outer.extractfile(member).read())
    except ValueError as exc:
        raise LayerAnalysisError(f"The image archive's {member.name} is not valid JSON.") from exc


def _read_package_file(layer: tarfile.TarFile, entry: tarfile.TarInfo, kind: str, budget: packagedb.Budget):
    """What a package file in a layer gives (builds/packagedb.py), read while it is the stream's current member;
    None for anything but a regular file (a link is never followed: it only hides what was below it)."""
    if not entry.isreg() or not budget.take_file():
        return None
    return budget.keep(packagedb.read_file(kind, layer.extractfile(entry), entry.size))


def _read_layer(outer: tarfile.TarFile, member: tarfile.TarInfo, budget: packagedb.Budget) -> _LayerRecord | None:
    reader = _HashingReader(outer.extractfile(member))
    entries: dict[str, tuple[str, int, int, str]] = {}
    package_files: dict[str, tuple[str, packagedb.FileContent | None]] = {}
    duplicate_bytes = 0
    whiteouts: list[str] = []
    opaque_dirs: list[str] = []
    try:
        with tarfile.open(fileobj=reader, mode="r|", bufsize=READ_BLOCK) as layer:
            for entry in members(layer):
                path = archive_path(entry.name)
                if not path or path.startswith("../"):
                    continue
                folder, base = posixpath.split(path)
                if base == OPAQUE_MARKER:
                    opaque_dirs.append(folder)
                elif base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
                    # Other `.wh..wh.` names are the storage driver's bookkeeping, not files of the image.
                    continue
                elif base.startswith(WHITEOUT_PREFIX):
                    whiteouts.append(posixpath.join(folder, base[len(WHITEOUT_PREFIX):]))
                else:
                    kind, size = _kind_and_size(entry)
                    if path in entries:
                        duplicate_bytes += entries[path][1]
                    link = entry.linkname if kind in (SYMLINK, HARDLINK) else ""
                    entries[path] = (kind, size, entry.mode & 0o7777, link)
                    package_kind = packagedb.kind_of(path)
                    if package_kind is not None:
                        package_files[path] = (package_kind,
                                               _read_package_file(layer, entry, package_kind, budget))
    except tarfile.ReadError:
        # Not a tar: in an OCI layout, blobs/ also holds the JSON config and manifests.
        if member.name.endswith("/layer.tar"):
            raise
        reader.drain()
        return None
    # The diff_id covers the whole layer tar, end-of-archive padding included.
    reader.drain()
    return _LayerRecord(
        diff_id=f"sha256:{reader.sha256.hexdigest()}",
        tar_size=reader.size,
        entries=entries,
        duplicate_bytes=duplicate_bytes,
        whiteouts=whiteouts,
        opaque_dirs=opaque_dirs,
        package_files=package_files,
    )


def _kind_and_size(entry: tarfile.TarInfo) -> tuple[str, int]:
    if entry.isreg():
        return FILE, entry.size
    if entry.isdir():
        return DIR, 0
    if entry.issym():
        return SYMLINK, 0
    if entry.islnk():
        # A hard link shares its target's bytes, which are counted once, on the target.
        return HARDLINK, 0
    return OTHER, 0


def _layer_paths(manifest: list | None) -> tuple[list[str], str, list[str]]:
    if manifest is None:
        raise LayerAnalysisError("The image archive has no manifest.json: it is not a `docker save` archive.")
    if not isinstance(manifest, list) or not manifest or not isinstance(manifest[0], dict):
        raise LayerAnalysisError("The image archive's manifest.json does not describe an image.")
    image = manifest[0]
    layers = image.get("Layers")
    if not isinstance(layers, list) or not all(isinstance(path, str) for path in layers):
        raise LayerAnalysisError("The image archive's manifest.json does not list the image's layers.")
    tags = [tag for tag in image.get("RepoTags") or [] if isinstance(tag, str)]
    return [archive_path(path) for path in layers], str(image.get("Config", "")), tags


class _FileSystem:
    """The image's files as the layers so far make them: path -> (type, size), with each folder's children."""

    def __init__(self) -> None:
        self.paths: dict[str, tuple[str, int]] = {}
        self.children: dict[str, set[str]] = {}

    def put(self, path: str, kind: str, size: int) -> None:
        self.paths[path] = (kind, size)
        # Link the path to every folder above it, even a folder no layer named, so `below` finds it.
        child = path
        while child:
            siblings = self.children.setdefault(posixpath.dirname(child), set())
            if child in siblings:
                break
            siblings.add(child)
            child = posixpath.dirname(child)

    def remove(self, path: str) -> tuple[str, int]:
        self.children.get(posixpath.dirname(path), set()).discard(path)
        self.children.pop(path, None)
        return self.paths.pop(path)

    def below(self, folder: str) -> Iterator[str]:
        """Every path under a folder (parents before children), the folder itself excluded; may include
        folders that no layer named, which are not in `paths`."""
        pending = sorted(self.children.get(folder, ()), reverse=True)
        while pending:
            path = pending.pop()
            yield path
            pending.extend(sorted(self.children.get(path, ()), reverse=True))


def _analyse(
    manifest: list | None, records: dict[str, _LayerRecord], links: dict[str, str], small_json: dict[str, bytes]
) -> ImageAnalysis:
    paths, config_name, tags = _layer_paths(manifest)
    filesystem = _FileSystem()
    merged = MergedPackages()
    layers: list[LayerAnalysis] = []
    wasted = 0
    all_bytes = 0
    for index, layer_path in enumerate(paths):
        record = records.get(resolve_link(layer_path, links))
        if record is None:
            raise LayerAnalysisError(f"The layer {layer_path} named by manifest.json is missing from the archive.")
        changes, layer_wasted = _apply(filesystem, record)
        merged.apply_layer(index, (change["path"] for change in changes if change["change"] == REMOVED),
                           record.package_files)
        wasted += layer_wasted + record.duplicate_bytes
        layer_bytes = sum(entry[1] for entry in record.entries.values())
        all_bytes += layer_bytes + record.duplicate_bytes
        layers.append(LayerAnalysis(record.diff_id, layer_path, record.tar_size, layer_bytes, changes))
    config = small_json.get(config_name)
    _check_diff_ids(layers, config)
    total_size = sum(size for _, size in filesystem.paths.values())
    efficiency = (all_bytes - wasted) / all_bytes if all_bytes else 1.0
    return ImageAnalysis(layers=layers, total_size=total_size, wasted_bytes=wasted, efficiency=efficiency,
                         repo_tags=tags, empty_layers=_empty_layers(config), packages=merged.packages(),
                         os_release=merged.os_release())


def _empty_layers(config: bytes | None) -> list[bool] | None:
    if config is None:
        return None
    try:
        history = json.loads(config).get("history")
    except (ValueError, AttributeError):
        return None
    if not isinstance(history, list):
        return None
    return [bool(entry.get("empty_layer")) if isinstance(entry, dict) else False for entry in history]


def _apply(filesystem: _FileSystem, record: _LayerRecord) -> tuple[list[dict[str, object]], int]:
    """Lay one layer over the file system; its changes (sorted by path) and the bytes it made wasted."""
    changes: list[dict[str, object]] = []
    wasted = 0

    def remove(path: str) -> None:
        nonlocal wasted
        if path not in filesystem.paths:
            return
        kind, size = filesystem.remove(path)
        wasted += size
        changes.append({"path": path, "change": REMOVED, "type": kind, "size": size})

    # Whiteouts and opaque folders hide what the layers below had, never what this layer itself brings.
    for target in record.whiteouts:
        if target in filesystem.paths and target not in record.entries:
            for path in [target, *filesystem.below(target)]:
                remove(path)
    for folder in record.opaque_dirs:
        for path in list(filesystem.below(folder)):
            if path not in record.entries:
                remove(path)
    for path, (kind, size, mode, link) in record.entries.items():
        previous = filesystem.paths.get(path)
        if previous is not None:
            wasted += previous[1]
            if previous[0] == DIR and kind != DIR:
                # A file replacing a folder hides everything that was in it.
                for below in list(filesystem.below(path)):
                    if below not in record.entries:
                        remove(below)
        filesystem.put(path, kind, size)
        change = {"path": path, "change": MODIFIED if previous else ADDED, "type": kind, "size": size, "mode": mode}
        if link:
            change["link"] = link
        changes.append(change)
    changes.sort(key=lambda change: change["path"])
    return changes, wasted


def _check_diff_ids(layers: list[LayerAnalysis], config: bytes | None) -> None:
    """When the image config came along, its diff_ids must be those computed: else the stream was damaged."""
    if config is None:
        return
    try:
        expected = json.loads(config)["rootfs"]["diff_ids"]
    except (ValueError, KeyError, TypeError):
        return
    computed = [layer.diff_id for layer in layers]
    if expected != computed:
        raise LayerAnalysisError(
            "The layers in the image archive do not match the image's diff_ids: the archive is damaged or truncated."
        )
