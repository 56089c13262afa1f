"""Importing OSV data: records stored by id, corrupt or hostile input refused or failed with nothing changed."""

from __future__ import annotations

import json
import os
import zipfile

import pytest

from builds.vulnerabilities import runner, services
from builds.vulnerabilities.models import AffectedPackage, Vulnerability, VulnerabilityImport, VulnerabilityMatch
from builds.vulnerabilities.osv import CorruptData, ImportRefused, Limits, check_zip, zip_documents
from console.constants import JobStatus
from console.jobs import log_text
from tests.vulnerabilities.osv_factory import analysed_image, osv_zip, record, upload, zip_bytes


def uploads(settings) -> list[str]:
    folder = settings.VULNERABILITY_UPLOADS_DIR
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def stored() -> list[tuple[str, str, str]]:
    return sorted(AffectedPackage.objects.values_list("vulnerability__osv_id", "ecosystem", "name"))


def test_it_imports_a_zip_of_records(import_zip, settings):
    run = import_zip(osv_zip(record("DSA-1-1", "Debian:12", "openssl", fixed="3.0.11-1"),
                             record("PYSEC-1", "PyPI", "Jinja2", fixed="3.1.3"),
                             record("GO-1", "Go", "example.org/x", fixed="1.0.0")))
    assert run.status == JobStatus.SUCCEEDED, log_text(run)
    assert (run.records, run.skipped, run.ecosystems) == (3, 0, ["Debian:12", "PyPI"])
    assert stored() == [("DSA-1-1", "Debian:12", "openssl"), ("PYSEC-1", "PyPI", "jinja2")]
    assert Vulnerability.objects.count() == 3
    # The stored upload is gone once its run ended.
    assert uploads(settings) == []
    assert run.stored_name == ""


def test_a_later_import_updates_records_by_id_and_removes_withdrawn_ones(import_zip):
    import_zip(osv_zip(record("OSV-1", "npm", "a", fixed="1.0.0"), record("OSV-2", "npm", "b", fixed="2.0.0")))
    run = import_zip(osv_zip(record("OSV-1", "npm", "a", fixed="1.5.0", summary="Changed"),
                             record("OSV-2", "npm", "b", withdrawn="2026-11-01T00:00:00Z")))
    assert run.status == JobStatus.SUCCEEDED
    assert run.withdrawn == 1
    assert list(Vulnerability.objects.values_list("osv_id", "summary")) == [("OSV-1", "Changed")]
    assert AffectedPackage.objects.get().ranges[0]["events"][1] == ["fixed", "1.5.0"]


def test_it_refuses_an_upload_that_is_not_a_zip_and_stores_nothing(staff, settings):
    with pytest.raises(ImportRefused, match="not a zip"):
        services.request_zip_import(staff, upload(b"PK\x03\x04 this is no zip at all"))
    assert not VulnerabilityImport.objects.exists()
    assert uploads(settings) == []


def test_it_refuses_a_zip_bomb_at_upload(staff, settings):
    # 8 MiB of one byte compresses about a thousand times: past the ratio limit for members above the floor.
    bomb = zip_bytes({"x.json": b'{"id": "X", "pad": "' + b" " * (8 * 1024**2) + b'"}'})
    with pytest.raises(ImportRefused, match="zip bomb"):
        services.request_zip_import(staff, upload(bomb))
    assert not VulnerabilityImport.objects.exists()
    assert uploads(settings) == []


@pytest.mark.parametrize("limit, words", [
    ({"max_members": 2}, "members"),
    ({"max_total_bytes": 300}, "add up"),
    ({"max_member_bytes": 100}, "a record may be at most"),
    ({"max_records": 2}, "documents"),
])
def test_it_refuses_a_zip_past_its_limits(limit, words):
    data = osv_zip(*(record(f"OSV-{n}", "npm", "x", fixed="1.0.0") for n in range(3)))
    limits = Limits(**{**vars(Limits.from_settings()), **limit})
    with pytest.raises(ImportRefused, match=words):
        check_zip(_file(data), limits)


def _file(data: bytes):
    import io

    return io.BytesIO(data)


def test_it_refuses_compression_methods_other_than_deflate():
    data = zip_bytes({"a.json": record("OSV-1", "npm", "x", fixed="1.0.0")}, compression=zipfile.ZIP_BZIP2)
    with pytest.raises(ImportRefused, match="compression method"):
        check_zip(_file(data), Limits.from_settings())


def test_it_refuses_a_zip_without_json_documents():
    with pytest.raises(ImportRefused, match="no OSV JSON"):
        check_zip(_file(zip_bytes({"README.txt": b"hello"})), Limits.from_settings())


def test_reading_stops_at_the_limits_whatever_the_headers_say(tmp_path):
    """Reading counts the bytes it actually decompressed against the limits again (headers can lie)."""
    path = tmp_path / "lying.zip"
    path.write_bytes(osv_zip(record("OSV-1", "npm", "x", fixed="1.0.0")))
    limits = Limits(**{**vars(Limits.from_settings()), "max_total_bytes": 50})
    with pytest.raises(CorruptData, match="add up"):
        list(zip_documents(path, limits))


def _seed(import_zip, owner):
    """A first import and an image it matches: the data a failed import must leave as it is."""
    image = analysed_image(owner, "a1", [("npm", "left-pad", "1.0.0")])
    first = import_zip(osv_zip(record("OSV-1", "npm", "left-pad", fixed="1.1.0", range_type="SEMVER")))
    assert first.status == JobStatus.SUCCEEDED
    return image, first


def _snapshot():
    return (sorted(Vulnerability.objects.values_list("osv_id", "summary")), stored(),
            sorted(VulnerabilityMatch.objects.values_list("vulnerability__osv_id", "fixed_version",
                                                          "first_seen_import")))


def test_a_document_that_is_not_json_fails_the_import_and_changes_nothing(import_zip, owner):
    _seed(import_zip, owner)
    before = _snapshot()
    run = import_zip(zip_bytes({
        "OSV-1.json": record("OSV-1", "npm", "left-pad", fixed="1.0.1", range_type="SEMVER", summary="Updated"),
        "OSV-2.json": record("OSV-2", "npm", "left-pad", introduced="0.1.0", range_type="SEMVER"),
        "OSV-3.json": b'{"id": "OSV-3", "affected": [',
    }))
    assert run.status == JobStatus.FAILED
    assert "OSV-3.json is not JSON" in run.error
    assert _snapshot() == before
    assert "Nothing was changed" in log_text(run)


def test_schema_violations_past_the_tolerance_fail_the_import_and_change_nothing(import_zip, owner, settings):
    _seed(import_zip, owner)
    before = _snapshot()
    run = import_zip(zip_bytes({"OSV-1.json": record("OSV-1", "npm", "left-pad", fixed="9.0.0", summary="New"),
                                "bad.json": {"id": "OSV-BAD", "affected": "everything"}}))
    assert run.status == JobStatus.FAILED
    assert "1 of 2 records" in run.error
    assert _snapshot() == before


def test_schema_violations_within_the_tolerance_are_skipped_and_logged(import_zip):
    documents = {f"OSV-{n}.json": record(f"OSV-{n}", "npm", "x", fixed="1.0.0") for n in range(100)}
    documents["bad.json"] = {"id": "OSV-BAD", "aliases": "not a list"}
    run = import_zip(zip_bytes(documents))
    assert run.status == JobStatus.SUCCEEDED
    assert (run.records, run.skipped) == (101, 1)
    assert "Skipped bad.json: OSV-BAD.aliases must be a list" in log_text(run)
    assert Vulnerability.objects.count() == 100


def test_an_import_with_no_records_fails(staff, django_capture_on_commit_callbacks, vulnerability_folders):
    folder = vulnerability_folders / "osv" / "empty"
    folder.mkdir()
    with django_capture_on_commit_callbacks(execute=False):
        queued = services.request_folder_import(staff, str(folder))
    runner.run_import(queued.pk)
    queued.refresh_from_db()
    assert queued.status == JobStatus.FAILED
    assert "no OSV records" in queued.error


def test_it_imports_a_folder_inside_the_allowed_roots_without_following_links(
        staff, django_capture_on_commit_callbacks, vulnerability_folders):
    folder = vulnerability_folders / "osv" / "debian"
    (folder / "nested").mkdir(parents=True)
    (folder / "DSA-1.json").write_text(json.dumps(record("DSA-1", "Debian:12", "bash", fixed="5.2-1")))
    (folder / "nested" / "DSA-2.json").write_text(json.dumps(record("DSA-2", "Debian:12", "zlib", fixed="1:1.3")))
    outside = vulnerability_folders / "secret.json"
    outside.write_text(json.dumps(record("DSA-3", "Debian:12", "secret", fixed="1")))
    (folder / "linked.json").symlink_to(outside)
    with django_capture_on_commit_callbacks(execute=False):
        queued = services.request_folder_import(staff, str(folder))
    runner.run_import(queued.pk)
    queued.refresh_from_db()
    assert queued.status == JobStatus.SUCCEEDED, log_text(queued)
    assert [name for _, _, name in stored()] == ["bash", "zlib"]


@pytest.mark.parametrize("folder", ["relative/path", "/etc", "/"])
def test_it_refuses_a_folder_outside_the_allowed_roots(staff, folder):
    with pytest.raises(ImportRefused):
        services.request_folder_import(staff, folder)
    assert not VulnerabilityImport.objects.exists()


def test_it_refuses_a_link_out_of_the_allowed_roots(staff, vulnerability_folders):
    (vulnerability_folders / "osv" / "escape").symlink_to("/etc")
    with pytest.raises(ImportRefused, match="not inside"):
        services.request_folder_import(staff, str(vulnerability_folders / "osv" / "escape"))


def test_only_staff_import(owner):
    with pytest.raises(services.StaffOnly):
        services.request_zip_import(owner, upload(osv_zip(record("OSV-1", "npm", "x", fixed="1.0.0"))))


def test_a_second_import_waits_for_the_first(staff, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        services.request_zip_import(staff, upload(osv_zip(record("OSV-1", "npm", "x", fixed="1.0.0"))))
        with pytest.raises(services.Conflict):
            services.request_zip_import(staff, upload(osv_zip(record("OSV-2", "npm", "x", fixed="1.0.0"))))


def test_the_reaper_fails_a_lost_import_and_removes_its_upload(staff, settings, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    with django_capture_on_commit_callbacks(execute=False):
        run = services.request_zip_import(staff, upload(osv_zip(record("OSV-1", "npm", "x", fixed="1.0.0"))))
    VulnerabilityImport.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING,
                                                         heartbeat_at=timezone.now() - timedelta(hours=2))
    assert services.reap_lost_imports() == [run.pk]
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    assert uploads(settings) == []


def test_a_members_name_cannot_start_a_line_of_its_own_in_the_log(import_zip):
    run = import_zip(zip_bytes({"a\nerror: forged.json": b"{not json",
                                "OSV-1.json": record("OSV-1", "npm", "x", fixed="1.0.0")}))
    assert run.status == JobStatus.FAILED
    assert "a?error: forged.json is not JSON" in run.error
    assert not any(line.startswith("error: forged") for line in log_text(run).splitlines())
