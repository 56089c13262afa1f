"""Reading OSV data: the documents of an `all.zip` (as osv.dev publishes one per ecosystem) or of a folder of OSV
JSON, within limits, and each document as an OSV record (https://ossf.github.io/osv-schema/).

Every input is hostile, staff's included. A zip is checked before anything is read from it (`check_zip`, at upload:
it is a zip, its member count, declared sizes, compression methods and ratios are within the limits, nothing is
encrypted); reading (`zip_documents`) stops at the limits again whatever the headers said (a member is read up to
its limit plus one byte). A folder is walked without following links, and only inside the roots the operator
allows (`resolve_folder`). A document that is not JSON (or not UTF-8) is `CorruptDocument`: the import fails. A
document that is JSON but not an OSV record the console can read is `InvalidRecord`: skipped and counted, and the
import fails when more than a fraction of its records are (`Limits.max_invalid_fraction`).
"""

from __future__ import annotations

import json
import os
import re
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils.dateparse import parse_datetime

from builds.vulnerabilities.ecosystems import normalise_name, order_of
from builds.vulnerabilities.ranges import EVENT_KINDS
from builds.vulnerabilities.versions import MAX_VERSION_LENGTH
from console.errors import DomainError

OSV_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,254}$")
MAX_ALIASES = 100
MAX_AFFECTED = 5000
MAX_RANGES = 100
MAX_EVENTS = 1000
MAX_VERSIONS = 50_000
MAX_NAME_LENGTH = 255
MAX_SUMMARY_LENGTH = 1000
MAX_SEVERITY_LENGTH = 255


class ImportRefused(DomainError):
    """An upload or folder that is not OSV data the console will read (a 400: nothing is stored)."""


class CorruptData(Exception):
    """The data turned out corrupt while it was read (a failed run; nothing is changed)."""


class CorruptDocument(CorruptData):
    """A document that is not JSON."""


class InvalidRecord(ValueError):
    """JSON that is not an OSV record the console can read; the message says where."""


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int
    max_members: int
    max_member_bytes: int
    max_total_bytes: int
    max_records: int
    max_ratio: int
    ratio_floor_bytes: int
    max_invalid_fraction: float

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            max_upload_bytes=settings.VULNERABILITY_IMPORT_MAX_UPLOAD_BYTES,
            max_members=settings.VULNERABILITY_IMPORT_MAX_MEMBERS,
            max_member_bytes=settings.VULNERABILITY_IMPORT_MAX_RECORD_BYTES,
            max_total_bytes=settings.VULNERABILITY_IMPORT_MAX_TOTAL_BYTES,
            max_records=settings.VULNERABILITY_IMPORT_MAX_RECORDS,
            max_ratio=settings.VULNERABILITY_IMPORT_MAX_RATIO,
            ratio_floor_bytes=settings.VULNERABILITY_IMPORT_RATIO_FLOOR_BYTES,
            max_invalid_fraction=settings.VULNERABILITY_IMPORT_MAX_INVALID_FRACTION,
        )


# -- records ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Affected:
    ecosystem: str
    name: str
    ranges: list[dict]
    versions: list[str]
    severity: str = ""


@dataclass(frozen=True)
class Record:
    osv_id: str
    aliases: list[str]
    summary: str
    severity: str
    modified: datetime | None
    published: datetime | None
    withdrawn: bool
    affected: list[Affected] = field(default_factory=list)
    # affected[] entries of ecosystems the console does not match (kept out).
    other_ecosystems: int = 0


def parse_document(data: bytes, where: str) -> dict:
    """The JSON object of one document; CorruptDocument when it is not JSON."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CorruptDocument(f"{where} is not JSON: {str(exc)[:200]}") from None
    return value


def _text(value, where: str, limit: int, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise InvalidRecord(f"{where} must be a string")
    if "\x00" in value:
        raise InvalidRecord(f"{where} holds a NUL")
    return value[:limit]


def _list(value, where: str, limit: int) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRecord(f"{where} must be a list")
    if len(value) > limit:
        raise InvalidRecord(f"{where} has more than {limit} entries")
    return value


def _dict(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRecord(f"{where} must be an object")
    return value


def _moment(value) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


def _version(value, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_VERSION_LENGTH or "\x00" in value:
        raise InvalidRecord(f"{where} must be a version (a string of at most {MAX_VERSION_LENGTH} characters)")
    return value


def _severity_of(entry: dict, where: str) -> str:
    """database_specific.severity or ecosystem_specific.severity (a word such as HIGH) where either is a string."""
    for key in ("database_specific", "ecosystem_specific"):
        specific = entry.get(key)
        if isinstance(specific, dict) and isinstance(specific.get("severity"), str):
            return _text(specific["severity"], f"{where}.{key}.severity", MAX_SEVERITY_LENGTH)
    return ""


def _scores(value, where: str) -> str:
    """The first `severity[]` entry as "TYPE score"."""
    for index, entry in enumerate(_list(value, where, 20)):
        entry = _dict(entry, f"{where}[{index}]")
        kind = _text(entry.get("type"), f"{where}[{index}].type", 40)
        score = _text(entry.get("score"), f"{where}[{index}].score", MAX_SEVERITY_LENGTH)
        if score:
            return f"{kind} {score}".strip()[:MAX_SEVERITY_LENGTH]
    return ""


def _ranges(value, where: str) -> list[dict]:
    ranges = []
    for index, entry in enumerate(_list(value, where, MAX_RANGES)):
        here = f"{where}[{index}]"
        entry = _dict(entry, here)
        range_type = _text(entry.get("type"), f"{here}.type", 20, required=True)
        if range_type not in ("ECOSYSTEM", "SEMVER"):
            continue  # GIT ranges name commits: nothing to match a package version against
        events = []
        for number, event in enumerate(_list(entry.get("events"), f"{here}.events", MAX_EVENTS)):
            event = _dict(event, f"{here}.events[{number}]")
            kinds = [kind for kind in EVENT_KINDS if kind in event]
            if len(kinds) != 1:
                raise InvalidRecord(f"{here}.events[{number}] must have one of {', '.join(EVENT_KINDS)}")
            events.append([kinds[0], _version(event[kinds[0]], f"{here}.events[{number}].{kinds[0]}")])
        if not any(kind == "introduced" for kind, _ in events):
            raise InvalidRecord(f"{here} has no introduced event")
        ranges.append({"type": range_type, "events": events})
    return ranges


def parse_record(document, where: str = "the record") -> Record:
    """An OSV record from its JSON object; InvalidRecord when the console cannot read it as one."""
    if not isinstance(document, dict):
        raise InvalidRecord(f"{where} is not a JSON object")
    osv_id = document.get("id")
    if not isinstance(osv_id, str) or not OSV_ID.match(osv_id):
        raise InvalidRecord(f"{where} has no valid id")
    where = osv_id
    aliases = [_text(alias, f"{where}.aliases[{index}]", 255, required=True)
               for index, alias in enumerate(_list(document.get("aliases"), f"{where}.aliases", MAX_ALIASES))]
    summary = _text(document.get("summary"), f"{where}.summary", MAX_SUMMARY_LENGTH)
    if not summary:
        details = _text(document.get("details"), f"{where}.details", 100_000)
        summary = details.strip().split("\n", 1)[0][:MAX_SUMMARY_LENGTH] if details else ""
    record_severity = _severity_of(document, where) or _scores(document.get("severity"), f"{where}.severity")
    affected, others = [], 0
    for index, entry in enumerate(_list(document.get("affected"), f"{where}.affected", MAX_AFFECTED)):
        here = f"{where}.affected[{index}]"
        entry = _dict(entry, here)
        package = _dict(entry.get("package"), f"{here}.package")
        ecosystem = _text(package.get("ecosystem"), f"{here}.package.ecosystem", 100, required=True)
        name = _text(package.get("name"), f"{here}.package.name", MAX_NAME_LENGTH + 1, required=True)
        if len(name) > MAX_NAME_LENGTH:
            raise InvalidRecord(f"{here}.package.name is longer than {MAX_NAME_LENGTH} characters")
        if order_of(ecosystem) is None:
            others += 1
            continue
        versions = [_version(version, f"{here}.versions[{number}]")
                    for number, version in enumerate(_list(entry.get("versions"), f"{here}.versions", MAX_VERSIONS))]
        ranges = _ranges(entry.get("ranges"), f"{here}.ranges")
        severity = _severity_of(entry, here) or _scores(entry.get("severity"), f"{here}.severity")
        affected.append(Affected(ecosystem, normalise_name(ecosystem, name), ranges, versions, severity))
    return Record(
        osv_id=osv_id, aliases=aliases, summary=summary, severity=record_severity,
        modified=_moment(document.get("modified")), published=_moment(document.get("published")),
        withdrawn=bool(document.get("withdrawn")), affected=affected, other_ecosystems=others,
    )


# -- zips -------------------------------------------------------------------------------------------------------

# Deflate and stored only: other methods (bzip2, lzma) reach far higher ratios and osv.dev uses neither.
ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def display_name(name: str) -> str:
    """A member's or file's name as logs and errors show it: at most 200 characters, control characters as `?`
    (a name must not start a line of its own in a job's log)."""
    return "".join(char if char.isprintable() else "?" for char in name[:200])


def _is_document(name: str) -> bool:
    return name.lower().endswith(".json")


def check_zip(file, limits: Limits) -> int:
    """Refuse (ImportRefused) a file that is not a zip of OSV documents within the limits; returns how many
    documents it declares. `file` is a path or a seekable binary file; nothing is decompressed."""
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ImportRefused(f"The upload is not a zip archive: {exc}", field="file") from None
    with archive:
        members = archive.infolist()
        if len(members) > limits.max_members:
            raise ImportRefused(f"The zip has {len(members)} members; at most {limits.max_members} are read.",
                                field="file")
        total = documents = 0
        for member in members:
            if member.is_dir():
                continue
            if member.flag_bits & 0x1:
                raise ImportRefused(f"{display_name(member.filename)!r} is encrypted.", field="file")
            if member.compress_type not in ZIP_METHODS:
                raise ImportRefused(f"{display_name(member.filename)!r} uses a compression method the console does not "
                                    "read (only stored and deflate).", field="file")
            if not _is_document(member.filename):
                continue
            _check_member_size(member, limits)
            total += member.file_size
            if total > limits.max_total_bytes:
                raise ImportRefused(f"The zip's documents add up to more than {limits.max_total_bytes} bytes.",
                                    field="file")
            documents += 1
        if documents == 0:
            raise ImportRefused("The zip holds no OSV JSON documents (*.json).", field="file")
        if documents > limits.max_records:
            raise ImportRefused(f"The zip holds {documents} documents; at most {limits.max_records} are read.",
                                field="file")
    return documents


def _check_member_size(member: zipfile.ZipInfo, limits: Limits) -> None:
    name = display_name(member.filename)
    if member.file_size > limits.max_member_bytes:
        raise ImportRefused(f"{name!r} is {member.file_size} bytes; a record may be at most "
                            f"{limits.max_member_bytes}.", field="file")
    if member.file_size > limits.ratio_floor_bytes and \
            member.file_size > limits.max_ratio * max(member.compress_size, 1):
        raise ImportRefused(f"{name!r} expands more than {limits.max_ratio} times: refused as a zip bomb.",
                            field="file")


def zip_documents(path: str | Path, limits: Limits) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each document of the zip, in its order, enforcing the limits on what is actually read;
    CorruptData when the zip breaks or exceeds them."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise CorruptData(f"The stored upload is not a zip archive: {exc}") from None
    total = count = 0
    with archive:
        for member in archive.infolist():
            if member.is_dir() or not _is_document(member.filename):
                continue
            try:
                _check_member_size(member, limits)
            except ImportRefused as exc:
                raise CorruptData(exc.message) from None
            count += 1
            if count > limits.max_records:
                raise CorruptData(f"The zip holds more than {limits.max_records} documents.")
            try:
                with archive.open(member) as stream:
                    data = stream.read(limits.max_member_bytes + 1)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
                raise CorruptData(f"{display_name(member.filename)!r} cannot be read: {exc}") from None
            if len(data) > limits.max_member_bytes:
                raise CorruptData(f"{display_name(member.filename)!r} is larger than {limits.max_member_bytes} bytes.")
            total += len(data)
            if total > limits.max_total_bytes:
                raise CorruptData(f"The documents add up to more than {limits.max_total_bytes} bytes.")
            yield display_name(member.filename), data


# -- folders ----------------------------------------------------------------------------------------------------


def import_roots() -> list[Path]:
    return [Path(root).resolve() for root in settings.VULNERABILITY_IMPORT_ROOTS]


def resolve_folder(folder: str) -> Path:
    """The folder as an absolute path with no links, inside one of VULNERABILITY_IMPORT_ROOTS; ImportRefused
    when it is not."""
    if not isinstance(folder, str) or not folder.startswith("/") or "\x00" in folder or len(folder) > 1000:
        raise ImportRefused("Give the folder as an absolute path on the server.", field="folder")
    roots = import_roots()
    if not roots:
        raise ImportRefused("Folder imports are off: the operator allows none (VULNERABILITY_IMPORT_ROOTS).",
                            field="folder")
    resolved = Path(os.path.realpath(folder))
    if not any(resolved == root or root in resolved.parents for root in roots):
        raise ImportRefused(f"{folder!r} is not inside a folder the operator allows for imports: "
                            f"{', '.join(str(root) for root in roots)}.", field="folder")
    if not resolved.is_dir():
        raise ImportRefused(f"{folder!r} is not a folder on the server.", field="folder")
    return resolved


def folder_documents(folder: str | Path, limits: Limits) -> Iterator[tuple[str, bytes]]:
    """(relative name, bytes) of each *.json regular file under the folder (links are not followed), in name
    order, within the limits; CorruptData past them."""
    root = Path(folder)
    total = count = seen = 0
    for directory, folders, files in os.walk(root, followlinks=False):
        folders.sort()
        for name in sorted(files):
            seen += 1
            if seen > limits.max_members:
                raise CorruptData(f"The folder holds more than {limits.max_members} files.")
            if not _is_document(name):
                continue
            path = Path(directory) / name
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
            except OSError:
                continue  # a link, or gone meanwhile: not a document of this folder
            with os.fdopen(fd, "rb") as stream:
                if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                    continue
                data = stream.read(limits.max_member_bytes + 1)
            relative = display_name(str(path.relative_to(root)))
            if len(data) > limits.max_member_bytes:
                raise CorruptData(f"{relative!r} is larger than {limits.max_member_bytes} bytes.")
            count += 1
            if count > limits.max_records:
                raise CorruptData(f"The folder holds more than {limits.max_records} documents.")
            total += len(data)
            if total > limits.max_total_bytes:
                raise CorruptData(f"The documents add up to more than {limits.max_total_bytes} bytes.")
            yield relative, data
