"""A build followed live in headless Chromium, through a real worker and the real engine."""

from __future__ import annotations

import re

import pytest

from builds.models import Build, Repository
from tests.builds.build_helpers import remove_images, source_from
from tests.e2e.test_source_upload_browser import log_in
from tests.fixtures.worker import routed_to, running_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_build_is_followed_live_and_a_failed_step_debugged(live_server, page, screenshot, owner, tmp_path):
    repository = Repository.objects.create(owner=owner, name="live")
    dockerfile = ("FROM busybox:1.35.0\nRUN echo first-step-output > /made\nRUN for i in 1 2 3; do echo tick $i; "
                  "sleep 1; done\nRUN cat /nothing-here\n")
    source = source_from(repository, {"Dockerfile": dockerfile})
    with running_worker(tmp_path) as worker, routed_to(worker):
        log_in(page, live_server)
        page.goto(f"{live_server.url}/sources/{source.pk}/build/")
        page.fill("#id_tags", "console-test/live:1")
        page.check("#id_no_cache")
        page.click("#build-form button[type=submit]")
        page.wait_for_url(f"{live_server.url}/builds/*/")
        # Lines arrive while the build runs: the ticks come one second apart.
        # (Locator waits: the CSP forbids the eval that wait_for_function uses.)
        page.locator("#build-log", has_text="tick 2").wait_for(timeout=60000)
        assert Build.objects.get().status == "running"
        screenshot("running")
        page.wait_for_selector("#build-failure", timeout=60000)
    build = Build.objects.get()
    assert build.status == "failed" and build.failed_step == 4
    # BuildKit puts the console's labels in the config: the Dockerfile's four steps are all there is.
    assert "step 4 of 4" in page.inner_text("#build-progress-label")
    assert "cat /nothing-here" in page.inner_text("#build-failure")
    page.fill("#id_command", "cat /made")
    page.click("#debug-form button[type=submit]")
    page.locator("#debug-output", has_text="first-step-output").wait_for()
    assert "exit code 0" in page.inner_text("#debug-output")
    screenshot("failed")
    remove_images(build.last_good_layer)


def test_a_buildkit_build_with_mounts_and_a_secret_from_the_form(live_server, page, screenshot, owner, tmp_path):
    repository = Repository.objects.create(owner=owner, name="mounts")
    secret = "browser-secret-value-1"
    dockerfile = (
        "FROM busybox:1.35.0 AS deps\n"
        "RUN --mount=type=cache,target=/cache echo kept > /cache/x && echo deps-ok > /deps\n"
        "FROM busybox:1.35.0\n"
        "RUN --mount=type=secret,id=TOKEN --mount=type=tmpfs,target=/scratch "
        # Its length, not its value: a value written in the Dockerfile is in the history, and the leak check
        # would rightly fail the build.
        f'test "$(wc -c < /run/secrets/TOKEN)" -eq {len(secret)} && echo secret-seen\n'
        "COPY --from=deps /deps /deps\n"
    )
    source = source_from(repository, {"Dockerfile": dockerfile})
    with running_worker(tmp_path) as worker, routed_to(worker):
        log_in(page, live_server)
        page.goto(f"{live_server.url}/sources/{source.pk}/build/")
        page.fill("#id_tags", "console-test/mounts:1")
        page.fill("#id_secrets", f"TOKEN={secret}")
        page.check("#id_no_cache")
        page.click("#build-form button[type=submit]")
        page.wait_for_url(f"{live_server.url}/builds/*/")
        page.locator("#build-status", has_text=re.compile("succeeded|failed")).wait_for(timeout=60000)
    build = Build.objects.get()
    assert build.status == "succeeded", build.error
    assert "secret-seen" in page.inner_text("#build-log")
    page.reload()
    assert "BuildKit" in page.inner_text("#build-builder")
    assert "secrets: TOKEN" in page.inner_text("#build-builder")
    steps = page.inner_text("#build-steps")
    assert "deps" in steps and "--mount=type=cache" in steps
    screenshot("mounts")
    # The value was typed into the form and never comes back: not in the page, not in the log.
    assert secret not in page.content()
    remove_images(build.image_id)
