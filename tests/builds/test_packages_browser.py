"""The image page's Packages section in headless Chromium: the OS and the packages, the filter, and the SBOM links
that download a CycloneDX and an SPDX file (read back and parsed here); the page fits its window at 390 px with a
package of a very long name."""

from __future__ import annotations

import json

import pytest

from builds.models import Image
from tests.builds.test_packages_api import PACKAGES, analysed_image, found
from tests.e2e.test_layout_browser import UNBROKEN, log_in, width_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def analysed(owner) -> Image:
    from builds.services.packages import record_packages

    image = analysed_image(owner)
    record_packages(image, [*PACKAGES, found("npm", UNBROKEN[:200], "1.0.0", path=f"app/node_modules/{UNBROKEN}/x")],
                    image.os_release)
    return image


def test_the_packages_section_filters_and_downloads_both_sboms(live_server, page, owner, analysed, screenshot):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/images/{analysed.pk}/")

    assert "Debian GNU/Linux 12 (bookworm)" in page.locator("#image-os").inner_text()
    assert page.locator("#packages-table tr.package").count() == 6
    page.select_option("#package-filter select[name=ecosystem]", "deb")
    page.fill("#package-filter input[name=q]", "zlib")
    page.click("#package-filter button[type=submit]")
    page.wait_for_url("**ecosystem=deb**")
    assert page.locator("#packages-table tr.package td code").first.inner_text() == "zlib1g"

    for kind, filename, key in (("cyclonedx", "pkgs_1.cdx.json", "bomFormat"),
                                ("spdx", "pkgs_1.spdx.json", "spdxVersion")):
        with page.expect_download() as download:
            page.click(f"#sbom-{kind}")
        assert download.value.suggested_filename == filename
        document = json.loads(open(download.value.path(), "rb").read())
        assert key in document
    assert errors == []

    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(f"{live_server.url}/images/{analysed.pk}/")
    measured = width_of(page)
    assert measured["scroll"] <= measured["inner"], measured["wide"]
    screenshot("390-packages")
