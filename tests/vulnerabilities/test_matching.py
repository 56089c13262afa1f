"""Matching imported records against analysed images: each ecosystem's key and order, fixed versions, what is new
since the last import, and a newly analysed image matched when its packages are recorded."""

from __future__ import annotations

from builds.models import Image
from builds.packagedb import FoundPackage
from builds.services.packages import record_packages
from builds.vulnerabilities import services
from builds.vulnerabilities.models import VulnerabilityMatch
from console.constants import JobStatus
from tests.vulnerabilities.osv_factory import analysed_image, osv_zip, record


def matched(image: Image) -> list[tuple[str, str, str, str]]:
    return sorted(VulnerabilityMatch.objects.filter(image=image).values_list(
        "vulnerability__osv_id", "package", "installed_version", "fixed_version"))


def test_a_record_with_a_fixed_version_marks_the_older_image_and_not_the_newer(import_zip, owner):
    older = analysed_image(owner, "01", [("deb", "libssl3", "3.0.9-1")], source={"libssl3": ("openssl", "")})
    newer = analysed_image(owner, "02", [("deb", "libssl3", "3.0.11-1~deb12u2")], source={"libssl3": ("openssl", "")})
    run = import_zip(osv_zip(record("DSA-5532-1", "Debian:12", "openssl", fixed="3.0.11-1~deb12u2", severity="HIGH",
                                    aliases=["CVE-2023-5363"])))
    assert run.status == JobStatus.SUCCEEDED
    assert matched(older) == [("DSA-5532-1", "libssl3", "3.0.9-1", "3.0.11-1~deb12u2")]
    assert matched(newer) == []
    match = VulnerabilityMatch.objects.get(image=older)
    assert (match.ecosystem, match.matched_name, match.severity) == ("Debian:12", "openssl", "HIGH")
    assert (run.images, run.matches, run.new_matches) == (2, 1, 1)


def test_a_debian_record_matches_the_source_version_and_the_release(import_zip, owner):
    # A binary package rebuilt (+b1) from an older source version, on Debian 12: the source version is compared.
    bookworm = analysed_image(owner, "03", [("deb", "libexpat1", "2.5.0-1+b1")],
                              source={"libexpat1": ("expat", "2.5.0-1")})
    bullseye = analysed_image(owner, "04", [("deb", "libexpat1", "2.2.10-2")], source={"libexpat1": ("expat", "")},
                              os_release={"ID": "debian", "VERSION_ID": "11"})
    ubuntu = analysed_image(owner, "05", [("deb", "expat", "2.5.0-1")], os_release={"ID": "ubuntu",
                                                                                     "VERSION_ID": "24.04"})
    import_zip(osv_zip(record("DSA-9-1", "Debian:12", "expat", fixed="2.5.0-1+deb12u1")))
    assert matched(bookworm) == [("DSA-9-1", "libexpat1", "2.5.0-1", "2.5.0-1+deb12u1")]
    assert matched(bullseye) == []
    assert matched(ubuntu) == []


def test_alpine_pypi_and_npm_packages_match_in_their_own_order(import_zip, owner):
    image = analysed_image(owner, "06", [("apk", "busybox", "1.36.1-r2"), ("pypi", "Jinja2", "3.1.2"),
                                         ("npm", "lodash", "4.17.20"), ("npm", "minimist", "1.2.6")],
                           os_release={"ID": "alpine", "VERSION_ID": "3.19.1"})
    import_zip(osv_zip(
        # apk order: -r2 is below -r15 (text order would say otherwise).
        record("ALPINE-1", "Alpine:v3.19", "busybox", fixed="1.36.1-r15"),
        record("ALPINE-2", "Alpine:v3.18", "busybox", fixed="1.36.1-r15"),
        # PEP 503 names, PEP 440 order.
        record("PYSEC-1", "PyPI", "jinja2", introduced="2.0", fixed="3.1.3"),
        record("GHSA-1", "npm", "lodash", fixed="4.17.21", range_type="SEMVER"),
        record("GHSA-2", "npm", "minimist", fixed="1.2.6", range_type="SEMVER"),
    ))
    assert matched(image) == [("ALPINE-1", "busybox", "1.36.1-r2", "1.36.1-r15"),
                              ("GHSA-1", "lodash", "4.17.20", "4.17.21"),
                              ("PYSEC-1", "Jinja2", "3.1.2", "3.1.3")]


def test_a_record_without_a_fix_matches_and_is_not_fixable(import_zip, owner):
    image = analysed_image(owner, "07", [("npm", "event-stream", "3.3.6")])
    import_zip(osv_zip(record("MAL-1", "npm", "event-stream", introduced="3.3.6", last_affected="3.3.6",
                              range_type="SEMVER")))
    assert matched(image) == [("MAL-1", "event-stream", "3.3.6", "")]
    assert not services.filter_matches(services.matches_of(image), fixable=True).exists()


def test_a_reimport_flags_only_the_new_matches_as_new(import_zip, owner):
    image = analysed_image(owner, "08", [("npm", "a", "1.0.0"), ("npm", "b", "1.0.0")])
    first = import_zip(osv_zip(record("OSV-A", "npm", "a", fixed="2.0.0", range_type="SEMVER")))
    assert [m.vulnerability.osv_id for m in services.filter_matches(services.matches_of(image), new=True,
                                                                    latest=services.latest_import())] == ["OSV-A"]
    second = import_zip(osv_zip(record("OSV-A", "npm", "a", fixed="1.5.0", range_type="SEMVER"),
                                record("OSV-B", "npm", "b", fixed="1.0.1", range_type="SEMVER")))
    assert services.latest_import() == second
    new = services.filter_matches(services.matches_of(image), new=True, latest=second)
    assert [m.vulnerability.osv_id for m in new] == ["OSV-B"]
    kept = VulnerabilityMatch.objects.get(image=image, vulnerability__osv_id="OSV-A")
    # The match stays the first import's, with the fixed version the second one says.
    assert (kept.first_seen_import_id, kept.fixed_version) == (first.pk, "1.5.0")
    assert (second.matches, second.new_matches) == (2, 1)


def test_a_reimport_drops_the_matches_its_data_no_longer_holds(import_zip, owner):
    image = analysed_image(owner, "09", [("npm", "a", "1.0.0")])
    import_zip(osv_zip(record("OSV-A", "npm", "a", fixed="2.0.0", range_type="SEMVER")))
    import_zip(osv_zip(record("OSV-A", "npm", "a", introduced="1.1.0", fixed="2.0.0", range_type="SEMVER")))
    assert matched(image) == []


def test_a_newly_analysed_image_is_matched_when_its_packages_are_recorded(import_zip, owner):
    run = import_zip(osv_zip(record("OSV-A", "npm", "a", fixed="2.0.0", range_type="SEMVER")))
    image = Image.objects.create(owner=owner, image_id="sha256:" + "c" * 64)
    record_packages(image, [FoundPackage(ecosystem="npm", name="a", version="1.2.0", purl="pkg:npm/a@1.2.0",
                                         path="/app/node_modules/a/package.json")], {})
    match = VulnerabilityMatch.objects.get(image=image)
    assert (match.fixed_version, match.first_seen_import_id) == ("2.0.0", run.pk)
    # Recorded again at a fixed version: the match goes.
    record_packages(image, [FoundPackage(ecosystem="npm", name="a", version="2.0.0", purl="pkg:npm/a@2.0.0",
                                         path="/app/node_modules/a/package.json")], {})
    assert not VulnerabilityMatch.objects.filter(image=image).exists()


def test_images_not_analysed_are_not_matched(import_zip, owner):
    image = analysed_image(owner, "10", [("npm", "a", "1.0.0")])
    Image.objects.filter(pk=image.pk).update(packages_read=None)
    run = import_zip(osv_zip(record("OSV-A", "npm", "a", fixed="2.0.0", range_type="SEMVER")))
    assert run.images == 0
    assert matched(image) == []
