"""OSV records, zips and analysed images made in code for the vulnerability tests."""

from __future__ import annotations

import io
import json
import zipfile

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from builds.models import Image, ImagePackage


def record(osv_id: str, ecosystem: str, name: str, *, fixed: str | None = None, introduced: str = "0",
           last_affected: str | None = None, versions: list[str] | None = None, range_type: str = "ECOSYSTEM",
           summary: str = "", severity: str | None = None, aliases: list[str] | None = None, **extra) -> dict:
    events = [{"introduced": introduced}]
    if fixed:
        events.append({"fixed": fixed})
    if last_affected:
        events.append({"last_affected": last_affected})
    affected = {"package": {"ecosystem": ecosystem, "name": name}, "ranges": [{"type": range_type, "events": events}]}
    if versions is not None:
        affected["versions"] = versions
    document = {"schema_version": "1.6.0", "id": osv_id, "modified": "2026-11-30T10:00:00Z",
                "aliases": aliases or [], "summary": summary or f"{osv_id} in {name}", "affected": [affected]}
    if severity:
        document["database_specific"] = {"severity": severity}
    document.update(extra)
    return document


def zip_bytes(documents: dict[str, object], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of {member name: document (dumped as JSON) or bytes (as they are)}."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, document in documents.items():
            data = document if isinstance(document, bytes) else json.dumps(document).encode()
            archive.writestr(name, data)
    return buffer.getvalue()


def osv_zip(*records: dict) -> bytes:
    return zip_bytes({f"{item['id']}.json": item for item in records})


def upload(data: bytes, name: str = "all.zip") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/zip")


def analysed_image(owner, image_id: str, packages: list[tuple[str, str, str]], *,
                   os_release: dict | None = None, source: dict[str, tuple[str, str]] | None = None) -> Image:
    """An image record whose analysis recorded `packages` [(type, name, version)] (rows made directly, as
    record_packages makes them); `source` gives a deb package's (source name, source version)."""
    image = Image.objects.create(owner=owner, image_id=f"sha256:{image_id:0<64}", tags=[f"app:{image_id}"],
                                 os_release=os_release or {"ID": "debian", "VERSION_ID": "12"},
                                 packages_read=timezone.now())
    for kind, name, version in packages:
        source_name, source_version = (source or {}).get(name, ("", ""))
        ImagePackage.objects.create(image=image, ecosystem=kind, name=name, version=version,
                                    source_name=source_name, source_version=source_version,
                                    purl=f"pkg:{kind}/{name}@{version}", path="/var/lib/dpkg/status")
    return image
