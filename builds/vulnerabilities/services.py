"""Vulnerability data imports and matching: what the API, the pages, the import job and the packages signal call.

- Asking for an import (staff only): `request_zip_import(user, upload)` checks the zip (ImportRefused: a 400,
  nothing stored) and stores it for the worker; `request_folder_import(user, folder)` checks the folder is inside
  VULNERABILITY_IMPORT_ROOTS. Either queues a VulnerabilityImport job (builds/vulnerabilities/runner.py).
- `apply_import(run, documents, limits)`: the job's work, in one transaction: records are added or updated by id
  (withdrawn ones removed), then every analysed image is matched again (`rematch_all`). A corrupt document or too
  many unreadable records raise CorruptData and the transaction leaves everything as it was.
- `match_image(image)`: an image's matches against the records stored now (its packages' OSV ecosystem, name and
  version, builds/vulnerabilities/ecosystems.py; the ranges, ranges.py). Matches it had keep the import that first
  found them; new ones get `new_from` (the import being applied, or the latest for a newly analysed image).
- Reading: `matches_for(user, image)`, `latest_import()`.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from builds.models import Image, ImagePackage
from builds.vulnerabilities.constants import ImportKind
from builds.vulnerabilities.ecosystems import PackageKey, package_key
from builds.vulnerabilities.models import AffectedPackage, Vulnerability, VulnerabilityImport, VulnerabilityMatch
from builds.vulnerabilities.osv import (
    CorruptData,
    ImportRefused,
    InvalidRecord,
    Limits,
    Record,
    check_zip,
    parse_document,
    parse_record,
    resolve_folder,
)
from builds.vulnerabilities.ranges import evaluate
from console import jobs
from console.constants import ACTIVE_STATUSES, JobStatus
from console.errors import Conflict, DomainError, NotFound

log = logging.getLogger(__name__)

RUN_IMPORT_TASK = "vulnerabilities.run_import"
NOT_QUEUED = "The import could not be queued: try again."
WORKER_LOST = "The import did not finish: its worker was lost. Import again."
# Records are written this many at a time.
BATCH = 500
# At most this many skipped records are named in an import's log.
LOGGED_SKIPS = 50


class StaffOnly(DomainError):
    status = 403


def _require_staff(user) -> None:
    if not getattr(user, "is_staff", False):
        raise StaffOnly("Only staff import vulnerability data.")


def imports_for(user) -> QuerySet[VulnerabilityImport]:
    """Every import, for staff; nothing for anyone else (the data is the console's, not a user's)."""
    if not getattr(user, "is_staff", False):
        return VulnerabilityImport.objects.none()
    return VulnerabilityImport.objects.all()


def latest_import() -> VulnerabilityImport | None:
    return VulnerabilityImport.latest()


def _refuse_while_active() -> None:
    active = VulnerabilityImport.objects.filter(status__in=ACTIVE_STATUSES).order_by("id").first()
    if active is not None:
        raise Conflict(f"Import #{active.pk} is {active.status}: import again once it has ended.")


def uploads_dir() -> Path:
    folder = Path(settings.VULNERABILITY_UPLOADS_DIR)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def request_zip_import(user, upload, limits: Limits | None = None) -> VulnerabilityImport:
    """Check an uploaded OSV zip (a Django UploadedFile), store it and queue its import. ImportRefused (400) when it
    is no zip of OSV documents within the limits: then nothing is stored."""
    _require_staff(user)
    limits = limits or Limits.from_settings()
    if upload is None:
        raise ImportRefused("Upload an OSV zip as `file`, or name a folder on the server as `folder`.", field="file")
    if upload.size is not None and upload.size > limits.max_upload_bytes:
        raise ImportRefused(f"The upload is larger than {limits.max_upload_bytes} bytes.", field="file")
    _refuse_while_active()
    stored_name = f"{secrets.token_hex(16)}.zip"
    path = uploads_dir() / stored_name
    written = 0
    try:
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            for chunk in upload.chunks():
                written += len(chunk)
                if written > limits.max_upload_bytes:
                    raise ImportRefused(f"The upload is larger than {limits.max_upload_bytes} bytes.", field="file")
                out.write(chunk)
        check_zip(path, limits)
        with transaction.atomic():
            run = VulnerabilityImport.objects.create(
                owner=user, kind=ImportKind.ZIP, name=(getattr(upload, "name", "") or "upload.zip")[:1000],
                stored_name=stored_name, size=written)
            jobs.enqueue_on_commit(run, RUN_IMPORT_TASK, failed_error=NOT_QUEUED)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return run


def request_folder_import(user, folder: str) -> VulnerabilityImport:
    """Queue the import of the OSV JSON files under a folder on the server, inside VULNERABILITY_IMPORT_ROOTS."""
    _require_staff(user)
    resolved = resolve_folder(folder)
    _refuse_while_active()
    with transaction.atomic():
        run = VulnerabilityImport.objects.create(owner=user, kind=ImportKind.FOLDER, name=str(resolved))
        jobs.enqueue_on_commit(run, RUN_IMPORT_TASK, failed_error=NOT_QUEUED)
    return run


def stored_upload(run: VulnerabilityImport) -> Path | None:
    if not run.stored_name:
        return None
    return Path(settings.VULNERABILITY_UPLOADS_DIR) / Path(run.stored_name).name


def forget_upload(run: VulnerabilityImport) -> None:
    """Remove an import's stored zip once its run has ended, whatever the end."""
    path = stored_upload(run)
    if path is not None:
        path.unlink(missing_ok=True)
        VulnerabilityImport.objects.filter(pk=run.pk).update(stored_name="")
        run.stored_name = ""


def reap_lost_imports(older_than: timedelta | None = None) -> list[int]:
    """Fail the imports whose worker is gone (their transaction never committed: nothing changed)."""
    if older_than is None:
        older_than = timedelta(seconds=settings.VULNERABILITY_IMPORT_TIMEOUT)
    reaped = jobs.reap_lost(VulnerabilityImport, older_than, WORKER_LOST, clean_up=forget_upload)
    never_taken = VulnerabilityImport.objects.filter(status=JobStatus.QUEUED,
                                                     queued_at__lt=timezone.now() - older_than)
    for run in never_taken:
        if jobs.finish(run, JobStatus.FAILED, WORKER_LOST):
            forget_upload(run)
            reaped.append(run)
    return [run.pk for run in reaped]


# -- applying an import -----------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    records: int = 0
    skipped: int = 0
    withdrawn: int = 0
    ecosystems: set[str] = field(default_factory=set)
    images: int = 0
    matches: int = 0
    new_matches: int = 0
    notes: list[str] = field(default_factory=list)


def apply_import(run: VulnerabilityImport, documents: Iterable[tuple[str, bytes]], limits: Limits,
                 progress: Callable[[str], None] | None = None) -> ImportResult:
    """Store the documents' records and match every analysed image again, all in one transaction; CorruptData
    (nothing changed) for a document that is not JSON or more unreadable records than the limits allow."""
    result = ImportResult()
    with transaction.atomic():
        batch: dict[str, Record] = {}
        for name, data in documents:
            result.records += 1
            document = parse_document(data, name)
            try:
                record = parse_record(document, name)
            except InvalidRecord as exc:
                result.skipped += 1
                if result.skipped <= LOGGED_SKIPS:
                    result.notes.append(f"Skipped {name}: {exc}")
                continue
            batch[record.osv_id] = record
            if len(batch) >= BATCH:
                _store_records(run, list(batch.values()), result)
                batch.clear()
                if progress is not None and result.records % (BATCH * 20) == 0:
                    progress(f"{result.records} records read.")
        _store_records(run, list(batch.values()), result)
        if result.records == 0:
            raise CorruptData("The data holds no OSV records.")
        allowed = math.floor(result.records * limits.max_invalid_fraction)
        if result.skipped > allowed:
            raise CorruptData(f"{result.skipped} of {result.records} records are not OSV records the console can "
                              f"read; at most {allowed} may be skipped. Nothing was changed.")
        images, matches, new = rematch_all(run)
        result.images, result.matches, result.new_matches = images, matches, new
        VulnerabilityImport.objects.filter(pk=run.pk).update(
            records=result.records, skipped=result.skipped, withdrawn=result.withdrawn,
            ecosystems=sorted(result.ecosystems), images=images, matches=matches, new_matches=new)
    return result


def _store_records(run: VulnerabilityImport, records: list[Record], result: ImportResult) -> None:
    if not records:
        return
    withdrawn = [record.osv_id for record in records if record.withdrawn]
    if withdrawn:
        Vulnerability.objects.filter(osv_id__in=withdrawn).delete()
        result.withdrawn += len(withdrawn)
    current = [record for record in records if not record.withdrawn]
    existing = {row.osv_id: row for row in Vulnerability.objects.filter(osv_id__in=[r.osv_id for r in current])}
    new_rows, changed_rows = [], []
    for record in current:
        row = existing.get(record.osv_id) or Vulnerability(osv_id=record.osv_id)
        row.aliases, row.summary, row.severity = record.aliases, record.summary, record.severity
        row.modified, row.published, row.imported_by = record.modified, record.published, run
        (changed_rows if row.pk else new_rows).append(row)
    Vulnerability.objects.bulk_update(changed_rows, ["aliases", "summary", "severity", "modified", "published",
                                                     "imported_by"], batch_size=BATCH)
    Vulnerability.objects.bulk_create(new_rows, batch_size=BATCH)
    ids = {row.osv_id: row.pk for row in Vulnerability.objects.filter(osv_id__in=[r.osv_id for r in current])
           .only("pk", "osv_id")}
    AffectedPackage.objects.filter(vulnerability_id__in=list(ids.values())).delete()
    AffectedPackage.objects.bulk_create(
        (AffectedPackage(vulnerability_id=ids[record.osv_id], ecosystem=entry.ecosystem, name=entry.name,
                         ranges=entry.ranges, versions=entry.versions, severity=entry.severity)
         for record in current for entry in record.affected),
        batch_size=BATCH)
    for record in current:
        result.ecosystems.update(entry.ecosystem for entry in record.affected)


# -- matching ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    vulnerability_id: int
    package: ImagePackage
    key: PackageKey
    fixed: str
    severity: str


class AffectedCache:
    """The stored affected entries by (ecosystem, name), loaded once per name for many images."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], list[AffectedPackage]] = {}

    def load(self, keys: set[tuple[str, str]]) -> None:
        missing = {key for key in keys if key not in self.entries}
        by_ecosystem: dict[str, list[str]] = {}
        for ecosystem, name in missing:
            by_ecosystem.setdefault(ecosystem, []).append(name)
            self.entries[(ecosystem, name)] = []
        for ecosystem, names in by_ecosystem.items():
            for start in range(0, len(names), BATCH):
                rows = AffectedPackage.objects.filter(ecosystem=ecosystem, name__in=names[start:start + BATCH]) \
                    .select_related("vulnerability").order_by("id")
                for row in rows:
                    self.entries[(row.ecosystem, row.name)].append(row)

    def get(self, key: tuple[str, str]) -> list[AffectedPackage]:
        return self.entries.get(key, [])


def find_matches(image: Image, cache: AffectedCache | None = None) -> list[Found]:
    """What the stored records say of the image's packages now (nothing before its packages are read)."""
    cache = cache or AffectedCache()
    keyed = []
    for package in ImagePackage.objects.filter(image=image).order_by("id"):
        key = package_key(package, image.os_release)
        if key is not None:
            keyed.append((package, key))
    cache.load({(key.ecosystem, key.name) for _, key in keyed})
    found: dict[tuple[int, int], Found] = {}
    for package, key in keyed:
        for entry in cache.get((key.ecosystem, key.name)):
            evaluation = evaluate(key.order, key.version, entry.ranges, entry.versions)
            if not evaluation.affected:
                continue
            slot = (entry.vulnerability_id, package.pk)
            earlier = found.get(slot)
            if earlier is None or (not earlier.fixed and evaluation.fixed):
                found[slot] = Found(entry.vulnerability_id, package, key, evaluation.fixed,
                                    entry.severity or entry.vulnerability.severity)
    return list(found.values())


def match_image(image: Image, new_from: VulnerabilityImport | None = None,
                cache: AffectedCache | None = None) -> tuple[int, int]:
    """Store the image's matches as the records say now; returns (matches, new ones). A match the image had
    keeps its `first_seen_import`; a new one gets `new_from` (default: the latest import)."""
    if new_from is None:
        new_from = latest_import()
    found = find_matches(image, cache)
    now = timezone.now()
    with transaction.atomic():
        existing = {(row.vulnerability_id, row.package_type, row.package, row.installed_version): row
                    for row in VulnerabilityMatch.objects.filter(image=image)}
        keep, create, update = set(), [], []
        for item in found:
            slot = (item.vulnerability_id, item.package.ecosystem, item.package.name[:255], item.key.version[:255])
            if slot in keep:
                continue
            keep.add(slot)
            row = existing.get(slot)
            if row is None:
                create.append(VulnerabilityMatch(
                    image=image, vulnerability_id=item.vulnerability_id, ecosystem=item.key.ecosystem,
                    matched_name=item.key.name[:255], package=slot[2], package_type=slot[1],
                    installed_version=slot[3], fixed_version=item.fixed[:255], severity=item.severity[:255],
                    first_seen_import=new_from, first_seen_at=now))
            elif (row.fixed_version, row.severity, row.ecosystem, row.matched_name) != \
                    (item.fixed[:255], item.severity[:255], item.key.ecosystem, item.key.name[:255]):
                row.fixed_version, row.severity = item.fixed[:255], item.severity[:255]
                row.ecosystem, row.matched_name = item.key.ecosystem, item.key.name[:255]
                update.append(row)
        gone = [row.pk for slot, row in existing.items() if slot not in keep]
        if gone:
            VulnerabilityMatch.objects.filter(pk__in=gone).delete()
        VulnerabilityMatch.objects.bulk_update(update, ["fixed_version", "severity", "ecosystem", "matched_name"],
                                               batch_size=BATCH)
        VulnerabilityMatch.objects.bulk_create(create, batch_size=BATCH)
    return len(keep), len(create)


def analysed_images() -> QuerySet[Image]:
    return Image.objects.filter(packages_read__isnull=False)


def rematch_all(run: VulnerabilityImport) -> tuple[int, int, int]:
    """Match every analysed image again, new matches marked as found by `run`; (images, matches, new ones)."""
    cache = AffectedCache()
    images = matches = new = 0
    for image in analysed_images().only("pk", "os_release").order_by("pk").iterator(chunk_size=200):
        count, created = match_image(image, new_from=run, cache=cache)
        images, matches, new = images + 1, matches + count, new + created
    return images, matches, new


def match_images_recorded_since(moment: datetime) -> int:
    """Match the images whose packages were recorded since `moment` (while an import ran, against older data)."""
    count = 0
    for image in analysed_images().filter(packages_read__gte=moment).order_by("pk"):
        match_image(image)
        count += 1
    return count


# -- reading ----------------------------------------------------------------------------------------------------


def matches_of(image: Image) -> QuerySet[VulnerabilityMatch]:
    """The image's matches (the caller decided the user may see the image)."""
    return VulnerabilityMatch.objects.filter(image=image).select_related("vulnerability")


def image_for(user, image_pk) -> Image:
    """One of the user's own images, by its record id; NotFound otherwise."""
    image = Image.objects.for_user(user).filter(pk=image_pk).first() if str(image_pk).isdigit() and \
        len(str(image_pk)) < 19 else None
    if image is None:
        raise NotFound("No such image.")
    return image


def is_new(match: VulnerabilityMatch, latest: VulnerabilityImport | None) -> bool:
    """Whether the latest import first found this match."""
    return latest is not None and match.first_seen_import_id == latest.pk


def filter_matches(matches: QuerySet[VulnerabilityMatch], *, fixable: bool | None = None, new: bool | None = None,
                   latest: VulnerabilityImport | None = None) -> QuerySet[VulnerabilityMatch]:
    """`fixable`: with (True) or without (False) a fixed version; `new`: first found by the latest import or not."""
    if fixable is not None:
        matches = matches.exclude(fixed_version="") if fixable else matches.filter(fixed_version="")
    if new is not None:
        if latest is None:
            matches = matches.none() if new else matches
        elif new:
            matches = matches.filter(first_seen_import=latest)
        else:
            matches = matches.exclude(first_seen_import=latest)
    return matches
