"""The deploy form, the deployment page following each host's progress to the end, and a rollback from the release
history, in headless Chromium, through a real worker, to the real fleet."""

from __future__ import annotations

import pytest

from fleet import services
from fleet.models import Deployment
from tests.e2e.test_source_upload_browser import log_in
from tests.fixtures.worker import routed_to, running_worker, wait_for
from tests.fleet.conftest import HELLO, http_get, remove_app

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PORT = 8686


def wait_until_done(page, names: list[str]) -> None:
    # Locator waits: the CSP forbids the eval that wait_for_function uses.
    page.locator("#deployment-status", has_text="succeeded").wait_for(timeout=90000)
    for name in names:
        page.locator(f'#targets tr[data-host="{name}"] [data-field="status"]', has_text="succeeded").wait_for()


def app_links(page, names: list[str]) -> dict[str, str]:
    return {name: page.locator(f'#targets tr[data-host="{name}"] [data-field="url"] a').get_attribute("href")
            for name in names}


def test_a_deployment_is_made_followed_per_host_and_rolled_back(live_server, page, screenshot, owner, hosts, images,
                                                                 fleet, tmp_path):
    names = [host.name for host in hosts]
    expected_links = {fleet_host.label: f"http://{fleet_host.address}:{PORT}/" for fleet_host in fleet}
    try:
        with running_worker(tmp_path, queues=("celery",)) as worker, routed_to(worker):
            log_in(page, live_server)
            page.goto(f"{live_server.url}/deployments/new/")
            page.fill("#id_image", HELLO)
            page.fill("#id_name", "browser-hello")
            page.fill("#id_selector", "env=test")
            page.locator('input[name="port_container"]').first.fill("8080/tcp")
            page.locator('input[name="port_host"]').first.fill(str(PORT))
            page.locator('input[name="env_key"]').first.fill("WHO")
            page.locator('input[name="env_value"]').first.fill("the browser")
            page.click('[data-add-row="env-rows"]')
            page.locator('input[name="env_key"]').nth(1).fill("COLOUR")
            page.locator('input[name="env_value"]').nth(1).fill("blue")
            page.select_option("#id_restart_policy", "unless-stopped")
            page.fill("#id_memory_limit", "64m")
            page.click("#deploy-form button[type=submit]")
            page.wait_for_url(f"{live_server.url}/deployments/*/")
            first = Deployment.objects.get()
            assert page.url == f"{live_server.url}/deployments/{first.pk}/"
            # The page was drawn before the end: what follows is its script following the run.
            assert page.get_attribute("#deployment", "data-final") == "false"
            screenshot("deploying")

            wait_until_done(page, names)
            assert app_links(page, names) == expected_links
            page.locator("#log", has_text="Deployed to all 3 host(s)").wait_for()
            screenshot("deployed")
            first.refresh_from_db()
            assert (first.env, first.memory_limit, first.restart_policy) == (
                {"WHO": "the browser", "COLOUR": "blue"}, 64 * 1024 * 1024, "unless-stopped")
            assert {http_get(url) for url in expected_links.values()} == {"Hello the browser. Wish you were here.\n"}

            second = services.create_deployment(owner, {
                "image": HELLO, "name": "browser-hello", "selector": "env=test", "ports": {"8080/tcp": PORT},
                "env": {"WHO": "the second release"}})
            wait_for(lambda: Deployment.objects.get(pk=second.pk).is_final, timeout=90, message="the second release")
            assert Deployment.objects.get(pk=second.pk).status == "succeeded"
            assert http_get(expected_links["plain"]) == "Hello the second release. Wish you were here.\n"

            page.goto(f"{live_server.url}/deployments/{second.pk}/")
            releases = page.locator("#releases tbody tr")
            assert releases.count() == 2
            assert "WHO=the second release" in releases.first.inner_text()
            assert f"Roll back to release #{first.number}" in page.inner_text("main")
            # Rolling back asks first (data-confirm): the user says yes.
            page.once("dialog", lambda dialog: dialog.accept())
            page.click("form[action$='/rollback/'] button[type=submit]")
            page.wait_for_url(f"{live_server.url}/deployments/*/")
            rollback = Deployment.objects.latest("pk")
            assert (rollback.pk, rollback.rollback_of_id) == (second.pk + 1, first.pk)
            assert page.url == f"{live_server.url}/deployments/{rollback.pk}/"
            assert f"Rolling browser-hello back to release #{first.number}." in page.inner_text("main")
            wait_until_done(page, names)
            assert app_links(page, names) == expected_links
            assert page.get_attribute(f"a[href='/deployments/{first.pk}/']", "href") is not None
            screenshot("rolled-back")
        assert {http_get(url) for url in expected_links.values()} == {"Hello the browser. Wish you were here.\n"}
    finally:
        remove_app(fleet, "browser-hello")
