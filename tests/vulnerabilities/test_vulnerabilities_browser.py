"""The vulnerability matches in headless Chromium: the image page's panel (fits at 1280 and 390 px, new ones
marked) and the images list's "fixable vulnerability" filter, chosen in its form."""

from __future__ import annotations

import json

import pytest

from builds.vulnerabilities import services
from builds.vulnerabilities.constants import ImportKind
from builds.vulnerabilities.models import VulnerabilityImport
from builds.vulnerabilities.osv import Limits
from console import jobs
from console.constants import JobStatus
from tests.e2e.test_layout_browser import UNBROKEN, log_in, width_of
from tests.vulnerabilities.osv_factory import analysed_image, record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def matched(owner, staff):
    fixable = analysed_image(owner, "b1", [("npm", "left-pad", "1.0.0"), ("npm", UNBROKEN[:200], "1.0.0")])
    clean = analysed_image(owner, "b2", [("npm", "left-pad", "1.3.0")])
    run = VulnerabilityImport.objects.create(owner=staff, kind=ImportKind.FOLDER, name="/srv/osv",
                                             status=JobStatus.RUNNING)
    documents = [(f"{item['id']}.json", json.dumps(item).encode()) for item in (
        record("GHSA-left-pad", "npm", "left-pad", fixed="1.3.0", range_type="SEMVER", severity="HIGH",
               summary=f"Padding overflow {UNBROKEN}"),
        record("GHSA-wide", "npm", UNBROKEN[:200], introduced="0.1.0", range_type="SEMVER"),
    )]
    services.apply_import(run, documents, Limits.from_settings())
    jobs.finish(run, JobStatus.SUCCEEDED)
    return fixable, clean


def test_the_image_page_lists_its_vulnerabilities_and_fits(live_server, page, owner, matched, screenshot):
    fixable, _clean = matched
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server.url)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server.url}/images/{fixable.pk}/")
        measured = width_of(page)
        assert measured["scroll"] <= measured["inner"], (width, measured["wide"])
        screenshot(f"{width}-vulnerabilities")
    rows = page.locator("#vulnerability-matches tbody tr")
    assert rows.count() == 2
    # Fixable first, each marked new (the only import found them).
    assert "GHSA-left-pad" in rows.nth(0).inner_text() and "1.3.0" in rows.nth(0).inner_text()
    assert page.locator("#vulnerability-matches .badge", has_text="new").count() == 2
    assert "1 fixable by a newer version" in page.locator("#vulnerability-summary").inner_text()
    assert errors == []


def test_the_images_list_filters_by_a_fixable_vulnerability(live_server, page, owner, matched):
    fixable, clean = matched
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/images/")
    assert page.locator(".image-row").count() == 2
    page.select_option("#id_fixable_vulnerability", "true")
    page.click("#image-filter button[type=submit]")
    page.wait_for_url("**fixable_vulnerability=true**")
    assert page.locator(".image-row").count() == 1
    assert "app:b1" in page.locator(".image-row").inner_text()
    page.select_option("#id_fixable_vulnerability", "false")
    page.click("#image-filter button[type=submit]")
    page.wait_for_url("**fixable_vulnerability=false**")
    assert "app:b2" in page.locator(".image-row").inner_text()
