"""The image page in headless Chromium: an analysed image with long paths and long instructions fits its window
at 1280 and 390 px, and the wasted files' panel is reached from the figures' "which files" link."""

from __future__ import annotations

import pytest

from builds.models import Image, ImageAnalysis, Layer
from console.constants import JobStatus
from tests.builds.test_images_fixtures import make_image
from tests.e2e.test_layout_browser import UNBROKEN, log_in, width_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def analysed(owner) -> Image:
    image = make_image(owner, "wide", ["app"])
    Image.objects.filter(pk=image.pk).update(config={"cmd": ["sh", "-c", f"echo {UNBROKEN}"], "env": [],
                                                     "exposed_ports": [], "volumes": []})
    long_path = f"srv/{UNBROKEN}/index.html"
    Layer.objects.filter(image=image, index=0).update(
        files=[{"path": long_path, "change": "added", "type": "file", "size": 5000}])
    Layer.objects.filter(image=image, index=1).update(
        created_by=f"RUN /bin/sh -c echo {UNBROKEN} > /{long_path} # buildkit",
        files=[{"path": long_path, "change": "modified", "type": "file", "size": 10}])
    run = ImageAnalysis.objects.create(image=image, status=JobStatus.SUCCEEDED)
    Image.objects.filter(pk=image.pk).update(analysis=run, files_size=1_000_010, wasted_bytes=5000,
                                             efficiency=1_000_010 / 1_005_010)
    return image


def test_the_analysed_image_page_fits_and_names_its_wasted_file(live_server, page, owner, analysed, screenshot):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server.url)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server.url}/images/{analysed.pk}/")
        measured = width_of(page)
        assert measured["scroll"] <= measured["inner"], (width, measured["wide"])
        screenshot(f"{width}-image")
    page.click("text=which files")
    assert page.url.endswith("#wasted-files")
    assert page.locator("#wasted-files-table code").first.inner_text() == f"/srv/{UNBROKEN}/index.html"
    assert page.locator("#efficiency").inner_text() == "99.5 %"
    assert errors == []
