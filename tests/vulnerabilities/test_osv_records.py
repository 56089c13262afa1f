"""Reading OSV records: what is kept, what is refused as not an OSV record, what is not JSON."""

from __future__ import annotations

import json

import pytest

from builds.vulnerabilities.osv import CorruptDocument, InvalidRecord, parse_document, parse_record
from tests.vulnerabilities.osv_factory import record


def test_it_reads_ids_aliases_ranges_versions_and_severity():
    document = record("DSA-5555-1", "Debian:12", "openssl", fixed="3.0.11-1~deb12u2", versions=["3.0.9-1"],
                      aliases=["CVE-2023-5678"], severity="HIGH")
    parsed = parse_record(document)
    assert parsed.osv_id == "DSA-5555-1"
    assert parsed.aliases == ["CVE-2023-5678"]
    assert parsed.severity == "HIGH"
    assert parsed.modified is not None
    [affected] = parsed.affected
    assert (affected.ecosystem, affected.name, affected.versions) == ("Debian:12", "openssl", ["3.0.9-1"])
    assert affected.ranges == [{"type": "ECOSYSTEM", "events": [["introduced", "0"],
                                                                ["fixed", "3.0.11-1~deb12u2"]]}]


def test_it_takes_the_first_severity_score_without_a_database_severity():
    document = record("GHSA-aaaa-bbbb-cccc", "npm", "left-pad", fixed="1.3.0")
    document["severity"] = [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L"}]
    assert parse_record(document).severity == "CVSS_V3 CVSS:3.1/AV:N/AC:L"


def test_it_normalises_pypi_names_and_keeps_out_other_ecosystems():
    document = record("PYSEC-2026-1", "PyPI", "Django_REST.framework", fixed="3.0")
    document["affected"].append({"package": {"ecosystem": "Maven", "name": "org.x:y"}, "ranges": []})
    parsed = parse_record(document)
    assert [entry.name for entry in parsed.affected] == ["django-rest-framework"]
    assert parsed.other_ecosystems == 1


def test_it_keeps_out_git_ranges():
    document = record("OSV-2026-1", "npm", "x", fixed="1.0.0")
    document["affected"][0]["ranges"].append({"type": "GIT", "repo": "https://example.org/x",
                                              "events": [{"introduced": "abc"}]})
    assert [entry["type"] for entry in parse_record(document).affected[0].ranges] == ["ECOSYSTEM"]


def test_it_takes_the_summary_from_the_details_first_line():
    document = record("OSV-2026-2", "npm", "x", fixed="1.0.0")
    document["summary"] = ""
    document["details"] = "A heap overflow.\nMore text."
    assert parse_record(document).summary == "A heap overflow."


def test_it_reads_a_withdrawn_record_as_withdrawn():
    assert parse_record(record("OSV-2026-3", "npm", "x", withdrawn="2026-11-01T00:00:00Z")).withdrawn


@pytest.mark.parametrize("change, where", [
    (lambda d: d.pop("id"), "valid id"),
    (lambda d: d.update(id="../../etc/passwd"), "valid id"),
    (lambda d: d.update(aliases="CVE-1"), "aliases must be a list"),
    (lambda d: d.update(affected={"package": {}}), "affected must be a list"),
    (lambda d: d["affected"][0].update(package={"ecosystem": "npm"}), "package.name must be a string"),
    (lambda d: d["affected"][0]["ranges"][0].update(events=[{"introduced": "0", "fixed": "1"}]), "must have one of"),
    (lambda d: d["affected"][0]["ranges"][0].update(events=[{"fixed": "1.0.0"}]), "no introduced event"),
    (lambda d: d["affected"][0]["ranges"][0].update(events=[{"introduced": 0}]), "must be a version"),
    (lambda d: d["affected"][0].update(versions=["1.0", None]), "must be a version"),
    (lambda d: d["affected"][0]["package"].update(name="x" * 300), "longer than"),
    (lambda d: d.update(summary="a\x00b"), "NUL"),
])
def test_it_refuses_what_is_not_an_osv_record(change, where):
    document = record("OSV-2026-4", "npm", "x", fixed="1.0.0")
    change(document)
    with pytest.raises(InvalidRecord, match=where):
        parse_record(document)


def test_it_refuses_json_that_is_not_an_object():
    with pytest.raises(InvalidRecord):
        parse_record(["OSV-2026-5"])


@pytest.mark.parametrize("data", [b"{not json", b"\xff\xfe\x00", b"[" * 100_000])
def test_it_tells_a_document_that_is_not_json(data):
    with pytest.raises(CorruptDocument):
        parse_document(data, "x.json")


def test_it_reads_a_json_document():
    assert parse_document(json.dumps({"id": "X"}).encode(), "x.json") == {"id": "X"}
