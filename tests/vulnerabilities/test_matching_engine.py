"""Vulnerability matching against images the real engine built and the real analysis job read.

- Two images FROM busybox, each with a crafted /etc/os-release (Debian 12) and dpkg status: openssl's libssl3 at
  3.0.9-1 in the older, at the fixed 3.0.11-1~deb12u2 in the newer. An OSV record of the source package openssl
  with that fixed version, imported as staff, marks the older and not the newer; a second import adding a zlib
  record flags only the zlib match as new. The images are analysed by the analysis job (run here, as the
  packages tests do), which records their packages and so sends the signal this app matches on.
- A real Debian bookworm made with mmdebstrap (the packages tests' tarball): a crafted OSV record of
  the source package of libc6, as `dpkg-query` inside a container of the image names it, matches it at that
  version when fixed just above it, and not when fixed at it.

Everything made here is removed at the end, by id.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from builds import tasks
from builds.constants import ImageOrigin
from builds.models import Image
from builds.services import analysis
from builds.services.images import record_image
from builds.vulnerabilities.models import VulnerabilityMatch
from console.constants import JobStatus
from console.engine import Engine
from tests.builds.build_helpers import remove_images
from tests.builds.test_images_engine import build
from tests.builds.test_packages_engine import debian_tarball
from tests.vulnerabilities.osv_factory import osv_zip, record

pytestmark = [pytest.mark.engine, pytest.mark.django_db]
PREFIX = "console-test/vulnerabilities-"
OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'
DOCKERFILE = """\
FROM busybox:1.35.0
COPY os-release /etc/os-release
COPY status /var/lib/dpkg/status
"""
FIXED = "3.0.11-1~deb12u2"


def dpkg_status(openssl: str) -> str:
    return (f"Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\n"
            f"Version: {openssl}\nDescription: Secure Sockets Layer toolkit\n\n"
            "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib\n"
            "Version: 1:1.2.13.dfsg-1\n")


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with Engine.for_builds(timeout=300) as connection:
        yield connection


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory) -> Iterator[tuple[str, str]]:
    made = []
    try:
        for name, version in (("older", "3.0.9-1"), ("newer", FIXED)):
            made.append(build(tmp_path_factory.mktemp(name), DOCKERFILE, tag=f"{PREFIX}{name}:1",
                              files={"os-release": OS_RELEASE, "status": dpkg_status(version)}))
        yield made[0], made[1]
    finally:
        remove_images(*made)


@pytest.fixture(scope="module")
def debian() -> Iterator[str]:
    """The packages tests' mmdebstrap bookworm (its tarball is kept for the day), imported under this module's name."""
    with debian_tarball().open("rb") as data:
        completed = subprocess.run(["docker", "import", "-", f"{PREFIX}debian:bookworm"], stdin=data,
                                   capture_output=True, text=True, timeout=600, check=False)
    assert completed.returncode == 0, completed.stderr
    image_id = completed.stdout.strip()
    yield image_id
    remove_images(image_id)


def analysed(owner, engine: Engine, reference: str) -> Image:
    image = record_image(owner, engine, reference, ImageOrigin.BUILT)
    assert analysis.request_analysis(image) is True
    tasks.analyse_image(image.pk)
    image.refresh_from_db()
    assert image.analysis_status == "succeeded", image.analysis_error
    assert image.packages_read is not None
    return image


def osv_ids(client, image: Image, **query) -> list[tuple[str, str, str, bool]]:
    answer = client.get(f"/api/v1/images/{image.pk}/vulnerabilities/", query)
    assert answer.status_code == 200, answer.content
    return [(row["id"], row["installed_version"], row["fixed_version"], row["new"]) for row in answer.json()["results"]]


def test_an_osv_record_with_a_fixed_version_marks_the_older_image_and_not_the_newer(
        owner, owner_api, engine, two_versions, import_zip):
    older, newer = (analysed(owner, engine, image_id) for image_id in two_versions)

    first = import_zip(osv_zip(record("DSA-5532-1", "Debian:12", "openssl", fixed=FIXED, severity="high",
                                      aliases=["CVE-2023-5363"])))

    assert first.status == JobStatus.SUCCEEDED, first.error
    assert osv_ids(owner_api, older) == [("DSA-5532-1", "3.0.9-1", FIXED, True)]
    assert osv_ids(owner_api, newer) == []
    listed = owner_api.get("/api/v1/images/", {"fixable_vulnerability": "true"}).json()["results"]
    assert [row["id"] for row in listed] == [older.pk]

    second = import_zip(osv_zip(record("DSA-5532-1", "Debian:12", "openssl", fixed=FIXED, severity="high"),
                                record("DSA-9999-1", "Debian:12", "zlib", fixed="1:1.3.dfsg-1")))

    assert second.status == JobStatus.SUCCEEDED, second.error
    assert osv_ids(owner_api, older) == [("DSA-5532-1", "3.0.9-1", FIXED, False),
                                         ("DSA-9999-1", "1:1.2.13.dfsg-1", "1:1.3.dfsg-1", True)]
    assert osv_ids(owner_api, newer, new="true") == [("DSA-9999-1", "1:1.2.13.dfsg-1", "1:1.3.dfsg-1", True)]
    # The match is on the source package, shown with the binary package that has it.
    assert VulnerabilityMatch.objects.get(image=older, vulnerability__osv_id="DSA-5532-1").package == "libssl3"


def dpkg_source_of(image_id: str, package: str) -> tuple[str, str]:
    """(source package, source version) of an installed package, as dpkg inside a container of the image says."""
    completed = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", image_id, "dpkg-query", "-W",
         "-f", "${source:Package}\t${source:Version}", package],
        capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    name, version = completed.stdout.strip().split("\t")
    return name, version


def test_a_crafted_debian_record_matches_a_real_debian_image(owner, owner_api, engine, debian, import_zip):
    source, version = dpkg_source_of(debian, "libc6")
    image = analysed(owner, engine, debian)

    run = import_zip(osv_zip(record("DEBIAN-TEST-1", "Debian:12", source, fixed=f"{version}+test1"),
                             record("DEBIAN-TEST-2", "Debian:12", source, fixed=version)))

    assert run.status == JobStatus.SUCCEEDED, run.error
    matches = osv_ids(owner_api, image)
    assert ("DEBIAN-TEST-1", version, f"{version}+test1", True) in matches
    assert "DEBIAN-TEST-2" not in [osv_id for osv_id, *_ in matches]
    # Every binary package of that source matches, at the source's version.
    binaries = set(VulnerabilityMatch.objects.filter(image=image, vulnerability__osv_id="DEBIAN-TEST-1")
                   .values_list("package", flat=True))
    assert "libc6" in binaries
