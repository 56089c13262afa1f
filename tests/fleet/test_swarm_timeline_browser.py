"""The deploy form's Swarm settings and the deployment page's live task timeline, in headless Chromium, through a
real worker, to a real swarm of three engines (tests/fixtures/swarm.py) pulling from a registry with Basic auth:
the form (a manager ticked opens the Swarm settings) makes a service of 2 replicas with start-first updates, and the
page, never reloaded, shows the tasks appear and run; the Redeploy... form then starts from those settings, and the
timeline shows the new release's tasks run beside the earlier release's, shut down."""

from __future__ import annotations

import secrets
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from fleet.models import Deployment, Host
from fleet.services.hosts import check_host
from registry.constants import RegistryKind
from registry.models import RegistryAccount
from tests.e2e.test_source_upload_browser import log_in
from tests.fixtures.registry import REGISTRY_USER, start_distribution
from tests.fixtures.swarm import swarm  # noqa: F401  (the module's swarm)
from tests.fixtures.worker import routed_to, running_worker
from tests.fleet.conftest import HEALTHY, HELLO
from tests.fleet.test_deploy_from_registry import GatewayRegistry, push

pytestmark = [pytest.mark.browser, pytest.mark.engine, pytest.mark.django_db(transaction=True)]

# A rollout in this test takes seconds; the timeout only bounds a broken one.
ROLLOUT_MS = 120_000


@pytest.fixture(scope="module")
def registry(swarm):  # noqa: F811
    with tempfile.TemporaryDirectory(prefix="swarm-ui-registry-") as directory:
        path = Path(directory)
        password = "pw-" + secrets.token_urlsafe(12)
        entry = subprocess.run(["htpasswd", "-iBn", REGISTRY_USER], input=password, capture_output=True,
                               text=True, check=True).stdout
        (path / "htpasswd").write_text(entry)
        server = start_distribution(path, {"htpasswd": {"realm": "swarm-ui", "path": str(path / "htpasswd")}},
                                    listen="0.0.0.0", username=REGISTRY_USER, password=password)
        try:
            yield GatewayRegistry(server, swarm.manager.gateway)
        finally:
            server.stop()


def remove_services(swarm) -> None:  # noqa: F811
    with swarm.manager.engine() as engine, engine.errors("Cleaning up"):
        for service in engine.api.services(filters={"label": "console.managed=true"}):
            engine.api.remove_service(service["ID"])


def rows(page, release: str, state: str | None = None):
    selector = f'#service-timeline table[data-release="{release}"] tbody tr'
    return page.locator(f'{selector}[data-state="{state}"]' if state else selector)


def test_the_form_makes_a_service_and_the_page_follows_its_tasks_live(live_server, page, screenshot, owner, images,
                                                                      swarm, registry, tmp_path):  # noqa: F811
    tag = uuid.uuid4().hex[:8]
    credentials = {"username": registry.server.username, "password": registry.server.password,
                   "serveraddress": registry.push_address}
    push(registry, images[HELLO], "team/swarm-ui", tag, credentials)
    push(registry, images[HEALTHY], "team/swarm-ui", f"healthy-{tag}", credentials)
    account = RegistryAccount.objects.create(owner=owner, name="team", kind=RegistryKind.GENERIC,
                                             url=f"http://{registry.address}", username=REGISTRY_USER,
                                             secret=registry.server.password)
    manager = check_host(Host.objects.create(owner=owner, name="swarm", url=swarm.manager.url))
    assert manager.swarm is not None, manager.swarm_reason
    check_host(Host.objects.create(owner=owner, name="plain", url=swarm.plain.url))
    loads: list[str] = []
    try:
        with running_worker(tmp_path, queues=("celery",)) as worker, routed_to(worker):
            log_in(page, live_server)
            page.goto(f"{live_server.url}/deployments/new/")
            settings = page.locator("#swarm-settings")
            assert settings.get_attribute("open") is None
            page.check("input[name=hosts][data-swarm]")
            # Ticking the manager opened the Swarm settings (static/js/fleet-deploy.js).
            expect(page.locator("#id_replicas")).to_be_visible()
            page.fill("#id_image", f"{registry.address}/team/swarm-ui:{tag}")
            page.fill("#id_name", "swarm-ui")
            page.select_option("#id_registry", str(account.pk))
            page.locator('input[name="env_key"]').first.fill("WHO")
            page.locator('input[name="env_value"]').first.fill("the timeline")
            page.fill("#id_replicas", "2")
            page.select_option("#id_update_order", "start-first")
            page.fill("#id_update_parallelism", "2")
            page.fill("#id_update_monitor", "1")
            page.select_option("#id_update_failure_action", "rollback")
            screenshot("swarm-form")
            page.click("#deploy-form button[type=submit]")
            page.wait_for_url(f"{live_server.url}/deployments/*/")
            first = Deployment.objects.get()
            assert first.swarm["replicas"] == 2 and first.swarm["update"] == {
                "order": "start-first", "parallelism": 2, "monitor": 1.0, "failure_action": "rollback"}
            # From here the page must not load again: whatever changes, its script drew.
            page.on("load", lambda _: loads.append(page.url))
            assert page.get_attribute("#service-timeline-body", "data-final") == "false"

            expect(rows(page, "new", "running")).to_have_count(2, timeout=ROLLOUT_MS)
            expect(page.locator("#deployment-status")).to_have_text("Succeeded", timeout=ROLLOUT_MS)
            expect(page.locator("#service-timeline-body")).to_have_attribute("data-final", "true")
            first.refresh_from_db()
            digest = first.image_digest.rpartition("@")[2]
            new = page.locator('#service-timeline table[data-release="new"]')
            assert new.get_attribute("data-digest") == digest and digest[:19] in new.locator("caption").inner_text()
            nodes = set(rows(page, "new").locator('[data-field="node"]').all_inner_texts())
            assert nodes <= {member.address for member in swarm.members} and nodes
            assert set(rows(page, "new").locator('[data-field="desired"]').all_inner_texts()) == {"running"}
            assert all("since " in text for text in rows(page, "new").locator('[data-field="state"]').all_inner_texts())
            assert "2 of 2 replicas running" in page.inner_text("#service-timeline")
            assert "Service on swarm" in page.inner_text("#service-timeline")
            # The console saw the tasks before they ran (they pull first), and the page says in which states.
            seen = rows(page, "new").locator('[data-field="history"]').all_inner_texts()
            assert any(text.strip() != "—" for text in seen), seen
            screenshot("swarm-timeline")
            assert loads == []
            # The deployment ended: the page asks for the timeline no more.
            asked: list[str] = []
            page.on("request", lambda request: asked.append(request.url) if "/service/" in request.url else None)
            page.wait_for_timeout(2500)
            assert asked == []

            # Redeploy... starts from the swarm settings; another image rolls the service over, start-first.
            page.click("#redeploy")
            page.wait_for_url(f"{live_server.url}/deployments/new/?from={first.pk}")
            assert page.get_attribute("#swarm-settings", "open") is not None
            assert page.input_value("#id_replicas") == "2" and page.input_value("#id_update_order") == "start-first"
            page.fill("#id_image", f"{registry.address}/team/swarm-ui:healthy-{tag}")
            page.click("#deploy-form button[type=submit]")
            page.wait_for_url(f"{live_server.url}/deployments/*/")
            second = Deployment.objects.latest("pk")
            assert second.pk != first.pk and second.swarm == first.swarm
            loads.clear()
            page.on("load", lambda _: loads.append(page.url))

            expect(rows(page, "new", "running")).to_have_count(2, timeout=ROLLOUT_MS)
            expect(page.locator("#deployment-status")).to_have_text("Succeeded", timeout=ROLLOUT_MS)
            expect(page.locator("#service-timeline-body")).to_have_attribute("data-final", "true")
            # The earlier release's tasks, told apart by their digest, were shut down once the new ones ran.
            old = page.locator('#service-timeline table[data-release="old"]')
            assert old.get_attribute("data-digest") == digest
            # (As the last reading saw them: Swarm may still be stopping them when the new ones run.)
            assert set(rows(page, "old").locator('[data-field="desired"]').all_inner_texts()) == {"shutdown"}
            assert rows(page, "old").count() == 2 and "(the last reading" in page.inner_text("#service-timeline")
            assert "Swarm's update: completed" in page.inner_text("#service-timeline")
            screenshot("swarm-updated")
            assert loads == []
    finally:
        remove_services(swarm)
