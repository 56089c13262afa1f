"""The webhooks pages in a real Chromium: add a webhook, see its delivery (sent by a real worker to a receiver on
127.0.0.1) with its attempts, redeliver it."""

from __future__ import annotations

import pytest

from console.events import services
from console.events.constants import EventKind
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("main form.form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_staff_adds_a_webhook_sees_its_delivery_and_redelivers(live_server, page, screenshot, staff, worker,
                                                               receiver):
    sign_in(page, live_server, "root")
    page.click("header >> text=Webhooks")
    page.fill("#id_url", receiver.url)
    page.check("input[name=events][value='build.finished']")
    page.fill("#id_secret", "browser-secret")
    page.click("#webhook-form button[type=submit]")
    page.wait_for_selector("#deliveries")
    assert receiver.url in page.locator("h1").inner_text()
    assert "browser-secret" not in page.content()

    receiver.answers = [500]
    services.record(staff, EventKind.BUILD_FINISHED, key="browser:1", repository="shop", data={"status": "failed"})
    receiver.wait_for(2)
    for _ in range(50):
        page.reload()
        if "Succeeded" in page.locator("#deliveries").inner_text():
            break
        page.wait_for_timeout(200)
    row = page.locator("#deliveries tbody tr").first
    assert "Succeeded" in row.inner_text() and "#1 500" in row.inner_text() and "#2 200" in row.inner_text()
    screenshot("delivered")
    row.locator("button", has_text="Redeliver").click()
    assert "Delivery queued again." in page.locator("body").inner_text()
    third = receiver.wait_for(3)[2]
    assert third["headers"]["X-Console-Event"] == "build.finished"
    assert page.locator("#deliveries tbody tr").count() == 2
