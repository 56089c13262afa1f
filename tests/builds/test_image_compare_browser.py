"""The compare page in headless Chromium: long paths, env values, labels and instructions fit the window at 1280
and 390 px, and the image page's Compare link leads to it."""

from __future__ import annotations

import pytest

from builds.models import Image, Layer, Repository
from tests.builds.test_api_images_compare import analysed, file, with_packages
from tests.builds.test_images_fixtures import make_image
from tests.e2e.test_layout_browser import UNBROKEN, log_in, width_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pair(owner) -> tuple[Image, Image]:
    repository = Repository.objects.create(owner=owner, name="wide")
    base = make_image(owner, "wide", ["app"], tags=["wide:1"], labels={"note": UNBROKEN}, repository=repository)
    head = make_image(owner, "wide2", ["app", "more"], tags=["wide:2"], labels={"note": UNBROKEN + "2"},
                      repository=repository)
    Image.objects.filter(pk=head.pk).update(config={**head.config, "env": ["PATH=/bin", f"LONG={UNBROKEN}"],
                                                    "cmd": ["sh", "-c", f"echo {UNBROKEN}"]})
    Layer.objects.filter(image=head, index=3).update(created_by=f"RUN /bin/sh -c echo {UNBROKEN} # buildkit")
    long_path = f"srv/{UNBROKEN}/index.html"
    analysed(base, {1: [file(long_path, 5), file(f"old/{UNBROKEN}", 3)]})
    analysed(head, {1: [file(long_path, 5), file(f"old/{UNBROKEN}", 3)],
                    3: [file(long_path, 50, "modified", mode=0o755), file(f"new/{UNBROKEN}", 4),
                        {"path": f"old/{UNBROKEN}", "change": "removed", "type": "file", "size": 3}]})
    # Package names and versions are at most 255 characters.
    name, version = f"pkg-{UNBROKEN}"[:255], f"2.0.0-{UNBROKEN}"[:255]
    with_packages(base, [("npm", name, "1.0.0")])
    with_packages(head, [("npm", name, version)])
    return base, head


def test_the_compare_page_fits_and_is_reached_from_the_image_page(live_server, page, owner, pair, screenshot):
    base, head = pair
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/images/{head.pk}/")
    page.click("#image-compare a")
    assert page.url.endswith(f"/images/compare/?base={base.pk}&head={head.pk}")
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server.url}/images/compare/?base={base.pk}&head={head.pk}")
        measured = width_of(page)
        assert measured["scroll"] <= measured["inner"], (width, measured["wide"])
        screenshot(f"{width}-image-compare")
    assert page.locator("#files-summary").inner_text().startswith("1 added, 1 removed, 1 changed")
    assert page.locator(".package-changed").count() == 1
    assert errors == []
