"""An image's packages in the API and on its page, and its SBOM downloads, without the engine: rows recorded as the
analysis records them (record_packages), then read through GET /api/v1/images/{id}/packages/ and /sbom/. The
CycloneDX document is checked by cyclonedx-python-lib's own JSON schema validator, the SPDX one parsed and
validated by spdx-tools."""

from __future__ import annotations

import json

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from builds.models import Image, ImageAnalysis
from builds.packagedb import FoundPackage, Parsed, purl_of
from builds.services.packages import record_packages
from console.constants import JobStatus
from tests.builds.test_images_fixtures import make_image

OS = {"ID": "debian", "VERSION_ID": "12", "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)"}


def found(ecosystem, name, version, layer=0, licence="", arch="", source_name="", path="var/lib/dpkg/status"):
    parsed = Parsed(ecosystem, name, version, arch=arch, licence=licence, source_name=source_name)
    return FoundPackage(ecosystem=ecosystem, name=name, version=version, purl=purl_of(parsed, OS), path=path,
                        layer=layer, licence=licence, source_name=source_name)


PACKAGES = [
    found("deb", "libc6", "2.36-9+deb12u4", arch="amd64", source_name="glibc", licence="LGPL-2.1-or-later"),
    found("deb", "zlib1g", "1:1.2.13.dfsg-1", arch="amd64", source_name="zlib"),
    found("apk", "musl", "1.2.4-r2", layer=1, arch="x86_64", licence="MIT", path="lib/apk/db/installed"),
    found("pypi", "requests", "2.31.0", layer=1, licence="Apache 2.0",
          path="usr/lib/python3/site-packages/requests-2.31.0.dist-info/METADATA"),
    found("npm", "@types/node", "20.1.0", layer=1, licence="MIT OR Apache-2.0",
          path="app/node_modules/@types/node/package.json"),
]


def analysed_image(owner, name="pkgs") -> Image:
    image = make_image(owner, name, ["one"])
    run = ImageAnalysis.objects.create(image=image, status=JobStatus.SUCCEEDED)
    Image.objects.filter(pk=image.pk).update(analysis=run)
    record_packages(image, PACKAGES, OS)
    image.refresh_from_db()
    return image


@pytest.mark.django_db
def test_the_packages_list_pages_filters_and_gives_each_its_layer(owner_api, owner):
    image = analysed_image(owner)
    url = f"/api/v1/images/{image.pk}/packages/"

    body = owner_api.get(url).json()
    assert body["count"] == 5
    assert [(row["ecosystem"], row["name"]) for row in body["results"]] == [
        ("apk", "musl"), ("deb", "libc6"), ("deb", "zlib1g"), ("npm", "@types/node"), ("pypi", "requests")]
    libc = body["results"][1]
    assert libc["version"] == "2.36-9+deb12u4" and libc["source_name"] == "glibc" and libc["layer"] == 0
    assert libc["purl"] == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
    assert body["results"][0]["layer"] == 1 and body["results"][0]["path"] == "lib/apk/db/installed"

    assert [row["name"] for row in owner_api.get(url, {"ecosystem": "deb"}).json()["results"]] == ["libc6", "zlib1g"]
    assert [row["name"] for row in owner_api.get(url, {"q": "LIB"}).json()["results"]] == ["libc6", "zlib1g"]
    paged = owner_api.get(url, {"page_size": 2, "page": 2}).json()
    assert paged["count"] == 5 and [row["name"] for row in paged["results"]] == ["zlib1g", "@types/node"]
    assert owner_api.get(url, {"ecosystem": "rpm"}).status_code == 400


@pytest.mark.django_db
def test_another_users_image_is_a_404_for_packages_and_sbom(owner, outsider):
    from rest_framework.test import APIClient

    image = analysed_image(owner)
    theirs = APIClient()
    theirs.force_authenticate(outsider)

    assert theirs.get(f"/api/v1/images/{image.pk}/packages/").status_code == 404
    assert theirs.get(f"/api/v1/images/{image.pk}/sbom/?format=spdx").status_code == 404
    assert theirs.get(f"/api/v1/images/{image.pk + 999}/sbom/?format=spdx").status_code == 404


@pytest.mark.django_db
def test_an_image_not_analysed_is_a_409_and_a_bad_format_a_400(owner_api, owner):
    image = make_image(owner, "fresh", ["one"])

    for url in (f"/api/v1/images/{image.pk}/packages/", f"/api/v1/images/{image.pk}/sbom/?format=cyclonedx"):
        response = owner_api.get(url)
        assert response.status_code == 409
        assert "not read yet" in response.json()["detail"]
    bad = owner_api.get(f"/api/v1/images/{image.pk}/sbom/?format=xml")
    assert bad.status_code == 400 and "cyclonedx, spdx" in bad.json()["format"][0]
    assert owner_api.get(f"/api/v1/images/{image.pk}/sbom/").status_code == 400


@pytest.mark.django_db
def test_an_analysis_from_before_packages_may_be_asked_for_again(owner_api, owner, django_capture_on_commit_callbacks):
    image = make_image(owner, "old", ["one"])
    run = ImageAnalysis.objects.create(image=image, status=JobStatus.SUCCEEDED)
    Image.objects.filter(pk=image.pk).update(analysis=run)

    response = owner_api.get(f"/api/v1/images/{image.pk}/packages/")
    assert response.status_code == 409 and "ask for its analysis again" in response.json()["detail"]
    with django_capture_on_commit_callbacks(execute=False):
        assert owner_api.post(f"/api/v1/images/{image.pk}/analyse/").status_code == 202
    image.refresh_from_db()
    assert image.analysis_status == "queued" and image.analyses.count() == 2


@pytest.mark.django_db
def test_the_cyclonedx_sbom_is_a_valid_download_with_the_image_and_its_packages(owner_api, owner):
    image = analysed_image(owner)

    response = owner_api.get(f"/api/v1/images/{image.pk}/sbom/?format=cyclonedx")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.cyclonedx+json"
    assert response["Content-Disposition"] == 'attachment; filename="pkgs_1.cdx.json"'
    text = response.content.decode()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    document = json.loads(text)
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.6"
    root = document["metadata"]["component"]
    assert (root["type"], root["name"], root["version"]) == ("container", "pkgs", image.image_id)
    components = {component["name"]: component for component in document["components"]}
    assert set(components) == {"libc6", "zlib1g", "musl", "requests", "@types/node"}
    assert components["libc6"]["purl"] == PACKAGES[0].purl and components["libc6"]["bom-ref"] == PACKAGES[0].purl
    assert components["musl"]["licenses"] == [{"license": {"id": "MIT"}}]
    assert components["requests"]["licenses"] == [{"license": {"name": "Apache 2.0"}}]
    assert components["@types/node"]["licenses"] == [{"expression": "MIT OR Apache-2.0"}]
    assert "licenses" not in components["zlib1g"]
    assert {dependency["ref"]: dependency.get("dependsOn", []) for dependency in document["dependencies"]}["image"] \
        == sorted(component["bom-ref"] for component in document["components"])


@pytest.mark.django_db
def test_the_spdx_sbom_is_valid_spdx_2_3_describing_the_image_with_purls(owner_api, owner, tmp_path):
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    image = analysed_image(owner)

    response = owner_api.get(f"/api/v1/images/{image.pk}/sbom/?format=spdx")

    assert response.status_code == 200 and response["Content-Type"] == "application/spdx+json"
    assert response["Content-Disposition"] == 'attachment; filename="pkgs_1.spdx.json"'
    saved = tmp_path / "image.spdx.json"
    saved.write_bytes(response.content)
    assert validate_full_spdx_document(parse_file(str(saved))) == []
    document = json.loads(response.content)
    assert document["spdxVersion"] == "SPDX-2.3"
    describes = [rel for rel in document["relationships"] if rel["relationshipType"] == "DESCRIBES"]
    assert describes == [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                          "relatedSpdxElement": "SPDXRef-Image"}]
    packages = {row["name"]: row for row in document["packages"]}
    assert packages["pkgs:1"]["checksums"] == [{"algorithm": "SHA256",
                                                 "checksumValue": image.image_id.removeprefix("sha256:")}]
    purls = {name: [ref["referenceLocator"] for ref in row.get("externalRefs", [])] for name, row in packages.items()}
    assert purls["libc6"] == [PACKAGES[0].purl] and purls["@types/node"] == ["pkg:npm/%40types/node@20.1.0"]
    assert packages["libc6"]["licenseDeclared"] == "LGPL-2.1-or-later"
    assert packages["requests"]["licenseDeclared"] == "NOASSERTION"
    assert packages["requests"]["licenseComments"] == "Declared as: Apache 2.0"
    contains = {rel["relatedSpdxElement"] for rel in document["relationships"] if rel["relationshipType"] == "CONTAINS"}
    assert contains == {row["SPDXID"] for row in document["packages"]} - {"SPDXRef-Image"}


@pytest.mark.django_db
def test_the_image_page_shows_the_os_packages_and_sbom_links(owner_client, owner):
    image = analysed_image(owner)

    body = owner_client.get(f"/images/{image.pk}/").content.decode()

    assert "Debian GNU/Linux 12 (bookworm)" in body
    assert body.count('class="package"') == 5
    assert f'href="/api/v1/images/{image.pk}/sbom/?format=cyclonedx"' in body
    assert f'href="/api/v1/images/{image.pk}/sbom/?format=spdx"' in body
    filtered = owner_client.get(f"/images/{image.pk}/?ecosystem=pypi").content.decode()
    assert filtered.count('class="package"') == 1 and "requests" in filtered
    fresh = make_image(owner, "fresh", ["one"])
    assert "read by the file analysis" in owner_client.get(f"/images/{fresh.pk}/").content.decode()
