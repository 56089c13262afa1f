"""The browser lists in a real Chromium: a search typed into the box filters the list, the count says how many
match, and the pager's next page keeps the search; the pages run without a CSP violation."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD
from tests.console.test_list_pages_queries import make_builds, make_images, make_repository, make_source

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, base_url: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("main form.form button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def watch_csp(page) -> list[str]:
    reports: list[str] = []
    page.on("console", lambda message: reports.append(message.text)
            if "Content Security Policy" in message.text else None)
    return reports


def test_searching_the_images_and_paging_keeps_the_search(live_server, page, owner, screenshot):
    repository = make_repository(owner)
    make_images(owner, 70, repository, name="web", labels={"team": "storefront"})
    make_images(owner, 40, repository, name="api", labels={"team": "backend"}, start=70)
    csp = watch_csp(page)
    log_in(page, live_server.url)

    page.goto(f"{live_server.url}/images/")
    assert page.locator("#list-count").inner_text() == "110 images"
    assert page.locator("#images tbody tr").count() == 50
    assert page.locator("#page-number").inner_text() == "Page 1 of 3"

    page.fill("#id_q", "storefront")
    page.press("#id_q", "Enter")
    page.wait_for_url(re.compile(r".*/images/\?.*q=storefront"))
    assert page.locator("#list-count").inner_text() == "70 images match the filters"
    tags = page.locator("#images tbody tr td:first-child").all_inner_texts()
    assert len(tags) == 50 and all(tag.startswith("web:") for tag in tags)
    assert tags[0] == "web:69"  # newest first
    assert page.locator("#page-number").inner_text() == "Page 1 of 2"
    screenshot("images-searched")

    page.click("#pager >> text=Older")
    page.wait_for_url(re.compile(r".*page=2"))
    assert "q=storefront" in page.url
    assert page.input_value("#id_q") == "storefront"
    tags = page.locator("#images tbody tr td:first-child").all_inner_texts()
    assert len(tags) == 20 and all(tag.startswith("web:") for tag in tags)
    assert tags[-1] == "web:0"
    assert page.locator("#page-number").inner_text() == "Page 2 of 2"

    page.fill("#id_q", "nothing-like-it")
    page.press("#id_q", "Enter")
    page.wait_for_url(re.compile(r".*q=nothing-like-it"))
    assert "No images match these filters" in page.locator("#images").inner_text()
    page.click("#images >> text=clear the filters")
    page.wait_for_url(f"{live_server.url}/images/")
    assert page.locator("#list-count").inner_text() == "110 images"
    assert csp == []


def test_the_builds_list_searches_with_a_status_and_pages(live_server, page, owner, screenshot):
    source = make_source(make_repository(owner, "shop"))
    make_builds(owner, 60, source, name="shop", status="failed")
    make_builds(owner, 30, source, name="shop", status="succeeded", start=60)
    csp = watch_csp(page)
    log_in(page, live_server.url)

    page.goto(f"{live_server.url}/builds/")
    assert page.locator("#list-count").inner_text() == "90 builds"
    page.select_option("#id_status", "failed")
    page.fill("#id_q", "shop:")
    page.click("#list-search button[type=submit]")
    page.wait_for_url(re.compile(r".*status=failed"))
    assert page.locator("#list-count").inner_text() == "60 builds match the filters"
    statuses = page.locator("#builds tbody tr td:nth-child(3)").all_inner_texts()
    assert len(statuses) == 50 and set(statuses) == {"failed"}
    screenshot("builds-filtered")

    page.click("#pager >> text=Older")
    page.wait_for_url(re.compile(r".*page=2"))
    assert page.locator("#id_status").input_value() == "failed"
    assert page.locator("#builds tbody tr").count() == 10
    assert csp == []
