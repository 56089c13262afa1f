"""The installed packages in an image's files, read from the package databases its layers hold.

The analysis (builds/layerfiles.py) streams every layer's tar once. For each member whose path is a package
database or metadata file (`kind_of`), it calls `read_file` on the member's stream while it is the current one:
the file is read through a bounded line reader (at most MAX_FILE_BYTES, lines of at most MAX_LINE_BYTES), parsed
at once, and only the parsed packages (`Parsed`, small) are kept, never the file. At the end, `MergedPackages`
lays the layers' files over one another in image order, as the overlay does (a later version of a file replaces
it; a whiteout, an opaque folder or a non-file removes it), and tells for each package at its version the layer
that introduced it: the lowest layer from which it is present, without a gap, up to the top.

Every file is hostile: a malformed entry is skipped, an oversized file is read only up to the bound, a symlink or
hard link is not followed (it only hides what was below it), and names and versions are cleaned of control
characters; a file that cannot be parsed at all gives no packages. Nothing here raises on bad content.

Read: Debian/Ubuntu dpkg (`var/lib/dpkg/status`, entries with `Status: install ok installed`; distroless
`var/lib/dpkg/status.d/*`, whose entries may carry no Status; their licences from the machine-readable
`usr/share/doc/<package>/copyright`, where it is one), Alpine apk (`lib/apk/db/installed`), Python
distributions (`*.dist-info/METADATA`, `*.egg-info/PKG-INFO` and `*.egg-info` files), npm packages
(`node_modules/<name>/package.json`, `node_modules/@scope/<name>/package.json`), and the OS from
`etc/os-release` (else `usr/lib/os-release`).
"""

from __future__ import annotations

import email.parser
import json
import logging
import posixpath
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from debian.deb822 import Deb822
from packageurl import PackageURL

from builds.constants import PackageEcosystem

log = logging.getLogger(__name__)

DPKG, DPKG_DIR, APK, PYTHON, NPM = "dpkg", "dpkg.d", "apk", "python", "npm"
# Files that are not packages but tell about them: the OS, and a Debian package's licences.
OS_RELEASE, COPYRIGHT = "os-release", "copyright"
PACKAGE_KINDS = (DPKG, DPKG_DIR, APK, PYTHON, NPM)

DPKG_STATUS = "var/lib/dpkg/status"
DPKG_STATUS_DIR = "var/lib/dpkg/status.d"
APK_INSTALLED = "lib/apk/db/installed"
OS_RELEASE_PATHS = ("etc/os-release", "usr/lib/os-release")
DOC_DIR = "usr/share/doc"

# Bounds, per file: a package database is read up to MAX_FILE_BYTES (a Debian system of 2,000 packages has a
# status of about 3 MB; apk's installed also lists every file), metadata files to much less, since what is read of
# them comes first. Longer lines are dropped whole.
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_METADATA_BYTES = 256 * 1024
MAX_PACKAGE_JSON_BYTES = 1024 * 1024
MAX_OS_RELEASE_BYTES = 64 * 1024
MAX_COPYRIGHT_BYTES = 64 * 1024
MAX_COPYRIGHT_LICENCES = 8
MAX_LINE_BYTES = 64 * 1024
READ_CHUNK = 64 * 1024
# At most this many packages from one file, package files per image, and different packages (as the files give
# them: the same package in the status of ten layers counts once) per image: what is past them is skipped.
MAX_PACKAGES_PER_FILE = 50_000
MAX_PACKAGE_FILES = 100_000
MAX_PACKAGES_PER_IMAGE = 100_000
MAX_FIELD = 255
MAX_LICENCE = 255
MAX_OS_RELEASE_KEYS = 64

INSTALLED = "install ok installed"
_DPKG_FIELDS = ["Package", "Status", "Version", "Architecture", "Source", "License"]
_SOURCE = re.compile(r"^\s*(?P<name>[^\s(]+)\s*(?:\((?P<version>[^)]*)\))?\s*$")
_OS_RELEASE_LINE = re.compile(r"^(?P<key>[A-Z][A-Z0-9_]{0,63})=(?P<value>.*)$")
_LICENSE_CLASSIFIER = "License :: "


@dataclass(frozen=True)
class FoundPackage:
    """One installed package as read from the image's merged files. `layer` is the index (among the image's
    non-empty layers, in order) of the layer that introduced this package at this version."""

    ecosystem: str
    name: str
    version: str
    purl: str
    path: str
    layer: int | None = None
    licence: str = ""
    source_name: str = ""
    source_version: str = ""


@dataclass(frozen=True)
class Parsed:
    """A package as one file gives it, before the OS is known (the purl of a dpkg or apk package names it)."""

    ecosystem: str
    name: str
    version: str
    arch: str = ""
    licence: str = ""
    source_name: str = ""
    source_version: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.ecosystem, self.name, self.version, self.arch)


# What a package file gave: its packages, or the os-release's fields (kind OS_RELEASE).
FileContent = tuple[Parsed, ...] | dict[str, str]


# -- which files ------------------------------------------------------------------------------------------------


def kind_of(path: str) -> str | None:
    """Which reader a layer member's path (clean, relative) calls for; None for every other file."""
    if path == DPKG_STATUS:
        return DPKG
    if path == APK_INSTALLED:
        return APK
    if path in OS_RELEASE_PATHS:
        return OS_RELEASE
    folder, base = posixpath.split(path)
    if base == "copyright" and posixpath.dirname(folder) == DOC_DIR:
        return COPYRIGHT
    if folder == DPKG_STATUS_DIR and base and not base.endswith(".md5sums"):
        return DPKG_DIR
    if base == "METADATA" and folder.endswith(".dist-info"):
        return PYTHON
    if (base == "PKG-INFO" and folder.endswith(".egg-info")) or base.endswith(".egg-info"):
        return PYTHON
    if base == "package.json":
        parts = folder.split("/")
        if len(parts) >= 2 and parts[-2] == "node_modules" and not parts[-1].startswith("@"):
            return NPM
        if len(parts) >= 3 and parts[-3] == "node_modules" and parts[-2].startswith("@"):
            return NPM
    return None


class _StreamFailed(Exception):
    """Reading the stream itself failed (the archive or the engine's connection): not the file's content."""


class _Guarded:
    """Marks the stream's own errors, so that `read_file` skips bad content and lets a broken stream through."""

    def __init__(self, raw) -> None:
        self.raw = raw

    def read(self, size: int = -1) -> bytes:
        try:
            return self.raw.read(size)
        except Exception as exc:
            raise _StreamFailed() from exc


def read_file(kind: str, stream, size: int) -> FileContent:
    """Parse one package file of `kind` from its (binary, forward-only) stream of `size` bytes. Never raises on
    its content (what cannot be read gives nothing); an error of the stream itself is raised as it was."""
    stream = _Guarded(stream)
    try:
        if kind in (DPKG, DPKG_DIR):
            return tuple(_dpkg(_lines(stream, MAX_FILE_BYTES), needs_status=kind == DPKG))
        if kind == APK:
            return tuple(_apk(_lines(stream, MAX_FILE_BYTES)))
        if kind == PYTHON:
            return tuple(_python(_head(stream, MAX_METADATA_BYTES)))
        if kind == NPM:
            if size > MAX_PACKAGE_JSON_BYTES:
                return ()
            return tuple(_npm(_head(stream, MAX_PACKAGE_JSON_BYTES)))
        if kind == OS_RELEASE:
            return parse_os_release(_head(stream, MAX_OS_RELEASE_BYTES))
        if kind == COPYRIGHT:
            return _copyright(_head(stream, MAX_COPYRIGHT_BYTES))
    except _StreamFailed as exc:
        raise exc.__cause__ from None
    except Exception:  # noqa: BLE001 (hostile content of any shape must not stop the analysis)
        log.warning("A %s package file could not be read; skipped.", kind, exc_info=True)
    return () if kind in PACKAGE_KINDS else {}


def _lines(stream, limit: int) -> Iterator[str]:
    """The stream's lines (decoded, "\\n" kept), reading at most `limit` bytes in chunks; a line longer than
    MAX_LINE_BYTES is dropped whole, so memory stays bounded whatever the file holds."""
    pending = b""
    skipping = False  # inside a line too long to keep, until its newline
    remaining = limit
    while remaining > 0:
        chunk = stream.read(min(READ_CHUNK, remaining))
        if not chunk:
            break
        remaining -= len(chunk)
        pieces = chunk.split(b"\n")
        for piece in pieces[:-1]:
            line, pending = pending + piece, b""
            if skipping:
                skipping = False
            elif len(line) <= MAX_LINE_BYTES:
                yield line.decode("utf-8", "replace") + "\n"
        if not skipping:
            pending += pieces[-1]
            if len(pending) > MAX_LINE_BYTES:
                pending, skipping = b"", True
    if pending and not skipping and remaining > 0:
        yield pending.decode("utf-8", "replace") + "\n"


def _head(stream, limit: int) -> str:
    return stream.read(limit).decode("utf-8", "replace")


def clean(value: object, limit: int = MAX_FIELD) -> str:
    """A field as stored: a string with no control characters, trimmed; "" when it is not one or is too long."""
    if not isinstance(value, str):
        return ""
    value = "".join(ch for ch in value if unicodedata.category(ch)[0] != "C" or ch == " ").strip()
    return value if len(value) <= limit else ""


def _licence(value: object) -> str:
    """A licence as stored: one line; a longer text (some METADATA hold the whole licence) is not a name."""
    if not isinstance(value, str) or "\n" in value.strip():
        return ""
    value = clean(value, MAX_LICENCE)
    return "" if value.upper() in ("UNKNOWN", "NONE") else value


# -- readers ----------------------------------------------------------------------------------------------------


def _dpkg(lines: Iterable[str], needs_status: bool) -> Iterator[Parsed]:
    """dpkg's status entries that are installed. Distroless images write one file per package under status.d,
    often without a Status: there, an entry with no Status counts as installed and one with another is not."""
    count = 0
    for paragraph in Deb822.iter_paragraphs(lines, fields=_DPKG_FIELDS, use_apt_pkg=False):
        status = " ".join(paragraph.get("Status", "").split())
        if status != INSTALLED and (needs_status or status):
            continue
        name, version = clean(paragraph.get("Package")), clean(paragraph.get("Version"))
        if not name or not version:
            continue
        source_name = source_version = ""
        match = _SOURCE.match(paragraph.get("Source", "") or "")
        if match:
            source_name = clean(match["name"])
            source_version = clean(match["version"] or "")
        yield Parsed(PackageEcosystem.DEB, name, version, arch=clean(paragraph.get("Architecture")),
                     licence=_licence(paragraph.get("License")),
                     source_name="" if source_name == name else source_name,
                     source_version="" if source_version == version else source_version)
        count += 1
        if count >= MAX_PACKAGES_PER_FILE:
            return


def _apk(lines: Iterable[str]) -> Iterator[Parsed]:
    """apk's installed database: one block per package, `P:` name, `V:` version, `A:` arch, `L:` licence,
    `o:` origin (the source package), blocks separated by empty lines."""
    count = 0
    fields: dict[str, str] = {}

    def package() -> Parsed | None:
        name, version = clean(fields.get("P")), clean(fields.get("V"))
        if not name or not version:
            return None
        origin = clean(fields.get("o"))
        return Parsed(PackageEcosystem.APK, name, version, arch=clean(fields.get("A")),
                      licence=_licence(fields.get("L")), source_name="" if origin == name else origin)

    for line in _and_end(lines):
        line = line.rstrip("\r\n")
        if line:
            if len(line) >= 2 and line[1] == ":" and line[0] in "PVALo":
                fields.setdefault(line[0], line[2:])
            continue
        if fields:
            found = package()
            fields = {}
            if found is not None:
                yield found
                count += 1
                if count >= MAX_PACKAGES_PER_FILE:
                    return


def _and_end(lines: Iterable[str]) -> Iterator[str]:
    yield from lines
    yield "\n"


def _python(text: str) -> Iterator[Parsed]:
    """A distribution's core metadata (METADATA, PKG-INFO): its headers, up to the first empty line."""
    end = text.find("\n\n")
    headers = email.parser.Parser().parsestr(text if end < 0 else text[:end + 1], headersonly=True)
    name, version = clean(headers.get("Name")), clean(headers.get("Version"))
    if not name or not version:
        return
    licence = _licence(headers.get("License-Expression")) or _licence(headers.get("License"))
    if not licence:
        classifiers = [value.split("::")[-1].strip() for value in headers.get_all("Classifier") or []
                       if isinstance(value, str) and value.startswith(_LICENSE_CLASSIFIER)]
        licence = clean(", ".join(dict.fromkeys(c for c in classifiers if c)), MAX_LICENCE)
    yield Parsed(PackageEcosystem.PYPI, name, version, licence=licence)


def _npm(text: str) -> Iterator[Parsed]:
    manifest = json.loads(text)
    if not isinstance(manifest, dict):
        return
    name, version = clean(manifest.get("name"), 214), clean(manifest.get("version"))
    if not name or not version:
        return
    licence = manifest.get("license")
    if isinstance(licence, dict):
        licence = licence.get("type")
    if not isinstance(licence, str) and isinstance(manifest.get("licenses"), list):
        names = [entry.get("type") if isinstance(entry, dict) else entry for entry in manifest["licenses"]]
        licence = " OR ".join(entry for entry in names if isinstance(entry, str))
    yield Parsed(PackageEcosystem.NPM, name, version, licence=_licence(licence))


def _copyright(text: str) -> dict[str, str]:
    """The licences a Debian package's machine-readable copyright file (DEP-5: it starts with `Format:`) names on
    its `License:` lines, in order, each once, as Debian spells them (`GPL-3+`, not always an SPDX id)."""
    if not text.startswith("Format:"):
        return {}
    names: list[str] = []
    for line in text.splitlines():
        if line.startswith("License:"):
            name = clean(line[len("License:"):], 64)
            if name and name not in names:
                names.append(name)
                if len(names) >= MAX_COPYRIGHT_LICENCES:
                    break
    joined = ""
    for name in names:
        longer = f"{joined}, {name}" if joined else name
        if len(longer) > MAX_LICENCE:
            break
        joined = longer
    return {"licence": joined} if joined else {}


def parse_os_release(text: str) -> dict[str, str]:
    """os-release's `KEY=value` lines (values unquoted as the shell would for the usual forms)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _OS_RELEASE_LINE.match(line.strip())
        if not match or len(fields) >= MAX_OS_RELEASE_KEYS:
            continue
        value = match["value"].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
            if match["value"].strip()[0] == '"':
                value = re.sub(r'\\([\\"$`])', r"\1", value)
        value = clean(value)
        if value:
            fields[match["key"]] = value
    return fields


# -- purls ------------------------------------------------------------------------------------------------------


def purl_of(parsed: Parsed, os_release: dict[str, str]) -> str:
    """The package's purl: pkg:deb/<distro>/name@version?arch=..&distro=<id>-<version>, pkg:apk/alpine/...,
    pkg:pypi/name@version, pkg:npm/[@scope/]name@version."""
    qualifiers: dict[str, str] = {}
    namespace = None
    name = parsed.name
    if parsed.ecosystem in (PackageEcosystem.DEB, PackageEcosystem.APK):
        default = "debian" if parsed.ecosystem == PackageEcosystem.DEB else "alpine"
        distro_id = os_release.get("ID", "").lower() or default
        namespace = distro_id if re.fullmatch(r"[a-z0-9._-]{1,64}", distro_id) else default
        if parsed.arch:
            qualifiers["arch"] = parsed.arch
        if parsed.ecosystem == PackageEcosystem.DEB and parsed.source_name:
            qualifiers["upstream"] = (f"{parsed.source_name}@{parsed.source_version}" if parsed.source_version
                                      else parsed.source_name)
        version_id = os_release.get("VERSION_ID", "")
        if version_id:
            qualifiers["distro"] = f"{namespace}-{version_id}"
    elif parsed.ecosystem == PackageEcosystem.NPM and name.startswith("@") and "/" in name:
        namespace, name = name.split("/", 1)
    return PackageURL(type=parsed.ecosystem, namespace=namespace, name=name, version=parsed.version,
                      qualifiers=qualifiers or None).to_string()


class Budget:
    """What one image's archive may still have read: package files, and different packages. Identical packages
    from different files (a dpkg status that each layer rewrites) are kept as one object."""

    def __init__(self) -> None:
        self.files_left = MAX_PACKAGE_FILES
        self.seen: dict[Parsed, Parsed] = {}

    def take_file(self) -> bool:
        if self.files_left <= 0:
            return False
        self.files_left -= 1
        return True

    def keep(self, content: FileContent) -> FileContent:
        if isinstance(content, dict):
            return content
        kept = []
        for parsed in content:
            same = self.seen.get(parsed)
            if same is None:
                if len(self.seen) >= MAX_PACKAGES_PER_IMAGE:
                    continue
                same = self.seen[parsed] = parsed
            kept.append(same)
        return tuple(kept)


# -- the merged view --------------------------------------------------------------------------------------------


@dataclass
class MergedPackages:
    """The package files of the image as the layers so far make them, and since which layer each package at its
    version has been present (builds/layerfiles.py calls `apply_layer` per layer, in image order)."""

    files: dict[str, tuple[str, FileContent]] = field(default_factory=dict)
    since: dict[tuple[str, str, str, str], int] = field(default_factory=dict)

    def apply_layer(self, index: int, removed: Iterable[str],
                    written: dict[str, tuple[str, FileContent | None]]) -> None:
        """Lay layer `index` over the files: `removed` are the paths it removed (whiteouts, opaque folders, a file
        over a folder), `written` the package files it holds (content None: not a regular file, or unreadable)."""
        changed = False
        for path in removed:
            changed |= self.files.pop(path, None) is not None
        for path, (kind, content) in written.items():
            if content is None:
                changed |= self.files.pop(path, None) is not None
            else:
                self.files[path] = (kind, content)
                changed = True
        if not changed:
            return
        present = {parsed.key for kind, content in self.files.values() if kind in PACKAGE_KINDS for parsed in content}
        for key in [key for key in self.since if key not in present]:
            del self.since[key]
        for key in present:
            self.since.setdefault(key, index)

    def os_release(self) -> dict[str, str]:
        for path in OS_RELEASE_PATHS:
            entry = self.files.get(path)
            if entry is not None and entry[1]:
                return dict(entry[1])
        return {}

    def _copyright_licence(self, name: str) -> str:
        entry = self.files.get(f"{DOC_DIR}/{name}/copyright")
        return entry[1].get("licence", "") if entry is not None and entry[0] == COPYRIGHT else ""

    def packages(self) -> list[FoundPackage]:
        """The packages of the top of the image, one per ecosystem, name, version and architecture (read from the
        first of its files in path order), each with its purl and introducing layer."""
        os_release = self.os_release()
        found: dict[tuple[str, str, str, str], FoundPackage] = {}
        for path in sorted(self.files):
            kind, content = self.files[path]
            if kind not in PACKAGE_KINDS:
                continue
            for parsed in content:
                if parsed.key in found:
                    continue
                if parsed.ecosystem == PackageEcosystem.DEB and not parsed.licence:
                    parsed = replace(parsed, licence=self._copyright_licence(parsed.name))
                try:
                    purl = purl_of(parsed, os_release)
                except ValueError:
                    continue
                if len(purl) > 1000:
                    continue
                found[parsed.key] = FoundPackage(
                    ecosystem=parsed.ecosystem, name=parsed.name, version=parsed.version, purl=purl, path=path,
                    layer=self.since.get(parsed.key), licence=parsed.licence, source_name=parsed.source_name,
                    source_version=parsed.source_version)
        return sorted(found.values(), key=lambda package: (package.ecosystem, package.name, package.version))
