"""An image's packages against the real engine: the analysis (its task, run here in the test's process) streams the
image out of the engine and records its packages.

- An image built FROM busybox with the docker CLI (classic builder), carrying a crafted dpkg status, apk installed,
  two Python distributions (one removed again by a later layer) and an npm package: the analysis records exactly
  those, each on the layer that brought it, and its os-release.
- A real Debian bookworm made with mmdebstrap (minbase) and `docker import`ed: its SBOM lists what `dpkg-query -W`
  inside a container of it lists, with the same versions. mmdebstrap takes minutes, so its tarball is kept in
  test-artifacts/ for the day (`bookworm-minbase-<date>.tar`); the image is imported once per module.

Everything made here is removed at the end, by id.
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from packageurl import PackageURL

from builds import tasks
from builds.constants import ImageOrigin
from builds.models import Image
from builds.services import analysis
from builds.services.images import record_image
from console.engine import Engine
from tests.builds.build_helpers import remove_images
from tests.builds.test_images_engine import build
from tests.builds.test_packagedb import APK_INSTALLED, DPKG_STATUS, METADATA, OS_RELEASE, PACKAGE_JSON

pytestmark = pytest.mark.engine
PREFIX = "console-test/packages-"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "mmdebstrap"
SITE = "/usr/lib/python3.11/site-packages"

CRAFTED = f"""\
FROM busybox:1.35.0
COPY os-release /usr/lib/os-release
RUN ln -s ../usr/lib/os-release /etc/os-release
COPY status /var/lib/dpkg/status
COPY installed /lib/apk/db/installed
COPY METADATA {SITE}/requests-2.31.0.dist-info/METADATA
COPY gone.METADATA {SITE}/gone-1.0.dist-info/METADATA
RUN rm -rf {SITE}/gone-1.0.dist-info
COPY package.json /app/node_modules/left-pad/package.json
"""


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with Engine.for_builds(timeout=300) as connection:
        yield connection


@pytest.fixture(scope="module")
def crafted(tmp_path_factory) -> Iterator[str]:
    files = {"os-release": OS_RELEASE.decode(), "status": DPKG_STATUS.decode(), "installed": APK_INSTALLED.decode(),
             "METADATA": METADATA.decode(), "gone.METADATA": "Metadata-Version: 2.1\nName: gone\nVersion: 1.0\n",
             "package.json": PACKAGE_JSON.decode()}
    image_id = build(tmp_path_factory.mktemp("crafted"), CRAFTED, tag=f"{PREFIX}crafted:1", files=files)
    yield image_id
    remove_images(image_id)


def analysed(owner, engine: Engine, reference: str) -> Image:
    image = record_image(owner, engine, reference, ImageOrigin.BUILT)
    assert analysis.request_analysis(image) is True
    tasks.analyse_image(image.pk)
    image.refresh_from_db()
    assert image.analysis_status == "succeeded", image.analysis_error
    return image


def all_pages(client, url: str) -> list[dict]:
    rows: list[dict] = []
    while url:
        body = client.get(url).json()
        rows += body["results"]
        url = body["next"]
    return rows


@pytest.mark.django_db
def test_the_analysis_records_exactly_the_crafted_packages_each_on_its_layer(owner_api, owner, engine, crafted):
    image = analysed(owner, engine, crafted)
    made_by = {layer.index: layer.created_by for layer in image.layers.all()}

    rows = all_pages(owner_api, f"/api/v1/images/{image.pk}/packages/")

    assert [(row["ecosystem"], row["name"], row["version"]) for row in rows] == [
        ("apk", "libcrypto3", "3.1.4-r1"), ("apk", "musl", "1.2.4-r2"),
        ("deb", "libc6", "2.36-9+deb12u4"), ("deb", "zlib1g", "1:1.2.13.dfsg-1"),
        ("npm", "left-pad", "1.3.0"), ("pypi", "requests", "2.31.0"),
    ]
    introduced = {row["name"]: made_by[row["layer"]] for row in rows}
    assert "status" in introduced["libc6"] and "installed" in introduced["musl"]
    assert "requests-2.31.0.dist-info" in introduced["requests"]
    assert "node_modules/left-pad" in introduced["left-pad"]
    by_name = {row["name"]: row for row in rows}
    assert by_name["libc6"]["purl"].startswith("pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12")
    assert by_name["requests"]["path"] == f"{SITE.lstrip('/')}/requests-2.31.0.dist-info/METADATA"
    assert image.os_release["VERSION_ID"] == "12" and image.packages_read is not None
    log = owner_api.get(f"/api/v1/images/{image.pk}/analysis/log/").json()["lines"]
    assert any("6 packages (2 apk, 2 deb, 1 npm, 1 pypi); operating system: Debian GNU/Linux 12" in line
               for line in log)


# -- a real Debian --------------------------------------------------------------------------------------------


def debian_tarball() -> Path:
    """bookworm minbase as a tar, made by mmdebstrap once a day (older days' tarballs are removed)."""
    target = ARTIFACTS / f"bookworm-minbase-{datetime.date.today().isoformat()}.tar"
    if target.exists():
        return target
    assert shutil.which("mmdebstrap"), "mmdebstrap is missing: scripts/test-services.sh installs it"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("bookworm-minbase-*.tar"):
        old.unlink()
    partial = target.with_suffix(".partial")
    completed = subprocess.run(["mmdebstrap", "--variant=minbase", "--format=tar", "bookworm", str(partial)],
                               capture_output=True, text=True, timeout=1200, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    partial.rename(target)
    return target


@pytest.fixture(scope="module")
def debian() -> Iterator[str]:
    tarball = debian_tarball()
    with tarball.open("rb") as data:
        completed = subprocess.run(["docker", "import", "-", f"{PREFIX}debian:bookworm"], stdin=data,
                                   capture_output=True, text=True, timeout=600, check=False)
    assert completed.returncode == 0, completed.stderr
    image_id = completed.stdout.strip()
    yield image_id
    remove_images(image_id)


def dpkg_query(image_id: str) -> set[tuple[str, str, str]]:
    """(name, version, architecture) of what dpkg in a container of the image says is installed."""
    completed = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", image_id, "dpkg-query", "-W",
         "-f", "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n"],
        capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    return {tuple(line.split("\t")[1:]) for line in completed.stdout.splitlines() if line.startswith("ii")}


@pytest.mark.django_db
def test_a_real_debians_sbom_lists_what_dpkg_query_lists(owner_api, owner, engine, debian):
    installed = dpkg_query(debian)
    assert len(installed) > 50

    image = analysed(owner, engine, debian)

    assert image.os_release["ID"] == "debian" and image.os_release["VERSION_ID"] == "12"
    cyclonedx = owner_api.get(f"/api/v1/images/{image.pk}/sbom/?format=cyclonedx")
    assert cyclonedx.status_code == 200
    components = json.loads(cyclonedx.content)["components"]
    assert {(c["name"], c["version"]) for c in components} == {(name, version) for name, version, _ in installed}
    arch = {name: architecture for name, _, architecture in installed}
    purls = {c["name"]: PackageURL.from_string(c["purl"]) for c in components}
    assert {(purl.type, purl.namespace, purl.name, purl.version, purl.qualifiers["arch"], purl.qualifiers["distro"])
            for purl in purls.values()} == {("deb", "debian", name, version, arch[name], "debian-12")
                                           for name, version, _ in installed}
    spdx = json.loads(owner_api.get(f"/api/v1/images/{image.pk}/sbom/?format=spdx").content)
    listed = {(row["name"], row["versionInfo"]) for row in spdx["packages"] if row["SPDXID"] != "SPDXRef-Image"}
    assert listed == {(name, version) for name, version, _ in installed}
    rows = all_pages(owner_api, f"/api/v1/images/{image.pk}/packages/?ecosystem=deb&page_size=500")
    assert {(row["name"], row["version"], row["layer"]) for row in rows} == {
        (name, version, 0) for name, version, _ in installed}
    sources = {row["name"]: row["source_name"] for row in rows}
    assert sources["libc6"] == "glibc" and sources["bash"] == ""
    # Licences from the machine-readable copyright files; libc6's is free-form.
    licences = {row["name"]: row["licence"] for row in rows}
    assert licences["zlib1g"] == "Zlib" and licences["bash"].startswith("GPL-3+, ") and licences["libc6"] == ""
