"""Following a tag from the browser (real Chromium): the deploy form's follow fields, the pending release on the
deployment page, Approve, and the new release saying who and what triggered it. No engine is reached: deployments
are queued and not run here (tests/fleet/test_follow_tag_engine.py runs one)."""

from __future__ import annotations

import pytest

from console.constants import JobStatus
from console.events import services as events
from console.events.constants import EventKind
from fleet.models import Deployment, Host
from fleet.services import follow
from registry.services import ensure_console_account
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DIGEST = "sha256:" + "d" * 64


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr("console.jobs.enqueue.send", lambda name, *args, **options: "t")
    monkeypatch.setattr("console.jobs.send", lambda name, *args, **options: "t")


def test_a_followed_tag_waits_for_approval_in_the_browser(live_server, page, screenshot, owner, settings):
    host = Host.objects.create(owner=owner, name="web", url="tcp://10.9.9.9:2375")
    account = ensure_console_account(owner)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("main form.form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/deployments/new/")
    page.fill("#id_image", f"{settings.REGISTRY_ADDRESS}/alice/shop:prod")
    page.fill("#id_name", "shop")
    page.check(f"input[name=hosts][value='{host.pk}']")
    page.select_option("#id_registry", str(account.pk))
    page.fill("#id_follow_tag", "alice/shop:prod")
    page.check("#id_follow_approval")
    page.click("#deploy-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/deployments/*/")
    first = Deployment.objects.get()
    assert (first.follow_tag, first.follow_approval) == ("alice/shop:prod", True)
    assert "alice/shop:prod" in page.locator("#follow-tag").inner_text()
    Deployment.objects.filter(pk=first.pk).update(status=JobStatus.SUCCEEDED)

    event = events.record(owner, EventKind.IMAGE_PUSHED, key="browser:push", repository="alice/shop",
                          data={"tag": "prod", "digest": DIGEST, "actor": "alice"})
    [pending] = follow.follow_pushed_tag(event.pk)
    page.reload()
    panel = page.locator("#pending-releases")
    assert DIGEST[:19] in panel.inner_text() and "Waiting for approval" in panel.inner_text()
    screenshot("pending")
    panel.locator("button", has_text="Approve").click()
    page.wait_for_url(f"{live_server.url}/deployments/*/")
    release = Deployment.objects.exclude(pk=first.pk).get()
    assert page.url == f"{live_server.url}/deployments/{release.pk}/"
    assert "approved by alice" in page.locator("#trigger").inner_text()
    assert release.image == f"{settings.REGISTRY_ADDRESS}/alice/shop@{DIGEST}"
    pending.refresh_from_db()
    assert pending.status == "approved" and pending.release == release
    screenshot("approved")
