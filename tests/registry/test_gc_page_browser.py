"""The garbage collection page in headless Chromium: its script (static/js/registry-gc.js, on poll.js) follows the
job through the API to its end, with no reload. The collection itself runs against a real Distribution in
tests/registry/test_gc.py; here the job row is moved by hand, as its runner moves it."""

from __future__ import annotations

import pytest

from console import jobs
from console.constants import JobStatus
from registry.models import GarbageCollection
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_gc_page_follows_the_collection_to_its_end_without_a_reload(live_server, page, staff):
    job = GarbageCollection.objects.create(requested_by=staff)
    page.goto(f"{live_server.url}/accounts/login/?next=/registry/gc/{job.pk}/")
    page.fill("#id_username", staff.username)
    page.fill("#id_password", PASSWORD)
    page.click("main form.form button[type=submit]")
    page.wait_for_selector("#job-status:has-text('Queued')")
    assert page.locator("meta[http-equiv=refresh]").count() == 0
    # A mark that a reload would lose: the page must be the same document at the end.
    page.evaluate("window.sameDocument = true")
    assert jobs.claim(job)
    page.wait_for_selector("#job-status:has-text('Running')")
    jobs.append_log(job, ["The registry is read-only: collecting."])
    page.wait_for_selector("#job-log:has-text('read-only: collecting')")
    GarbageCollection.objects.filter(pk=job.pk).update(bytes_before=5 * 1024 * 1024, bytes_after=1024 * 1024,
                                                       freed_bytes=4 * 1024 * 1024)
    assert jobs.finish(job, JobStatus.SUCCEEDED)
    page.wait_for_selector("#job-status:has-text('Succeeded')")
    freed = page.locator("#job-freed span")
    assert freed.get_attribute("title") == f"{4 * 1024 * 1024} bytes"
    assert freed.inner_text().replace("\u00a0", " ") == "4.0 MB"
    assert page.locator("#job-error").is_hidden()
    assert page.evaluate("window.sameDocument") is True


def test_a_failed_collection_shows_its_error(live_server, page, staff):
    job = GarbageCollection.objects.create(requested_by=staff)
    jobs.claim(job)
    page.goto(f"{live_server.url}/accounts/login/?next=/registry/gc/{job.pk}/")
    page.fill("#id_username", staff.username)
    page.fill("#id_password", PASSWORD)
    page.click("main form.form button[type=submit]")
    page.wait_for_selector("#job-status:has-text('Running')")
    assert jobs.finish(job, JobStatus.FAILED, "garbage-collect exited with 1: see the log")
    page.wait_for_selector("#job-error:has-text('garbage-collect exited with 1')")
    assert page.locator("#job-status").inner_text() == "Failed"
    assert page.locator("#job-freed").inner_text() == "—"
