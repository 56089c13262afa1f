"""The whole journey in headless Chromium, the way a user meets the console, on real components: sign up, create a
repository, upload examples/hello as an archive (progress bar), preview the context, build it with the live log,
open its image page (layers, labels), push it to the console's registry (Distribution with token auth signed by
this live server), deploy it with WHO set to two fleet hosts (real engines in network namespaces), GET the app on
each host, deploy a second release, roll back. A screenshot of each page goes to test-artifacts/screenshots/.

The deployment copies the built image from the build engine to each host (save -> load): the console's registry
listens on 127.0.0.1 of this machine, which the fleet's engines (in their own namespaces) cannot reach.
tests/fleet/test_deploy_from_registry.py covers deploying through the console's registry.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from builds.models import Build
from console.constants import JobStatus
from fleet.models import Deployment, Host
from registry.models import Push
from tests.builds.build_helpers import remove_images
from tests.fixtures.fleet import fleet  # noqa: F401  (fixture)
from tests.fixtures.registry import TOKEN_ISSUER, TOKEN_SERVICE, console_registry, token_registry  # noqa: F401
from tests.fixtures.worker import routed_to, running_worker
from tests.fleet.conftest import http_get, register, remove_app

pytestmark = [pytest.mark.browser, pytest.mark.engine, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long enough passphrase"
LONG = 120000


def hello_archive(tmp_path: Path) -> Path:
    path = tmp_path / "hello.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        archive.add(ROOT / "examples" / "hello", arcname=".")
    return path


def deploy(page, url: str, hosts: list[Host], who: str) -> Deployment:
    page.goto(f"{url}/deployments/new/")
    page.fill("#id_image", "journey/hello:1")
    page.fill("#id_name", "hello")
    for host in hosts:
        page.check(f"input[name=hosts][value='{host.pk}']")
    page.locator("input[name=port_container]").first.fill("8080/tcp")
    page.locator("input[name=port_host]").first.fill("8080")
    page.locator("input[name=env_key]").first.fill("WHO")
    page.locator("input[name=env_value]").first.fill(who)
    page.click("#deploy-form button[type=submit]")
    page.wait_for_url(f"{url}/deployments/*/")
    page.locator("#deployment-status", has_text="Succeeded").wait_for(timeout=LONG)
    return Deployment.objects.latest("pk")


def test_the_whole_journey(live_server, page, screenshot, console_registry, fleet, tmp_path):  # noqa: F811
    url = live_server.url
    registry_env = {"REGISTRY_ADDRESS": console_registry.address, "REGISTRY_SERVICE": TOKEN_SERVICE,
                    "REGISTRY_ISSUER": TOKEN_ISSUER, "REGISTRY_DIR": str(console_registry.directory),
                    "REGISTRY_TOKEN_REALM": f"{url}/registry/token/"}
    image_id = ""
    try:
        with running_worker(tmp_path, env=registry_env) as worker, routed_to(worker):
            # Sign up.
            page.goto(f"{url}/accounts/signup/")
            page.fill("#id_username", "journey")
            page.fill("#id_email", "journey@example.com")
            page.fill("#id_password1", PASSWORD)
            page.fill("#id_password2", PASSWORD)
            page.click("main form.form button[type=submit]")
            page.wait_for_url(f"{url}/")
            screenshot("1-dashboard")

            # A repository, and examples/hello uploaded into it with the progress bar.
            page.goto(f"{url}/repositories/new/")
            page.fill("#id_name", "hello")
            page.click("main form.form button[type=submit]")
            page.wait_for_url(f"{url}/repositories/*/")
            screenshot("2-repository")
            page.set_input_files("#id_archive", str(hello_archive(tmp_path)))
            assert page.locator("#upload-progress").is_hidden()
            page.click("#upload-form button[type=submit]")
            page.wait_for_url(f"{url}/sources/*/")

            # The context the build will send: the tree, with .dockerignore applied.
            assert page.locator("#file-tree").is_visible()
            assert "Dockerfile" in page.inner_text("#file-tree")
            screenshot("3-context")

            # The build, its log live, to the end.
            page.click("#build-this")
            page.fill("#id_tags", "journey/hello:1")
            page.click("#build-form button[type=submit]")
            page.wait_for_url(f"{url}/builds/*/")
            page.locator("#build-log", has_text="[1/").wait_for(timeout=LONG)
            screenshot("4-build-running")
            page.locator("#build-status", has_text="succeeded").wait_for(timeout=LONG)
            build = Build.objects.get()
            image_id = build.image_id
            assert build.status == JobStatus.SUCCEEDED and image_id
            assert "RUN mkdir -p /app/www/cgi-bin" in page.inner_text("#build-log")
            screenshot("5-build-done")

            # The image page: layers and labels.
            page.locator("#build-image a").wait_for(timeout=LONG)
            page.click("#build-image a")
            page.wait_for_url(f"{url}/images/*/")
            labels = page.inner_text("#image-labels")
            assert "io.console.build-id" in labels and "org.opencontainers.image.title" in labels
            assert page.locator("#image-layers tbody tr").count() >= 3
            screenshot("6-image")

            # Pushed to the console's own registry.
            page.goto(f"{url}/registries/")
            screenshot("7-registries")
            page.goto(f"{url}/pushes/new/")
            console_account = page.locator("#id_registry option", has_text="console").get_attribute("value")
            page.fill("#id_image", "journey/hello:1")
            page.select_option("#id_registry", console_account)
            page.fill("#id_repository", "journey/hello")
            page.fill("#id_tag", "1")
            page.click("main form.form button[type=submit]")
            page.wait_for_url(f"{url}/pushes/*/")
            page.locator("#job-status", has_text="Succeeded").wait_for(timeout=LONG)
            assert page.locator("#job-digest").inner_text().startswith("sha256:")
            screenshot("8-pushed")
            push = Push.objects.get()
            assert push.status == JobStatus.SUCCEEDED
            page.goto(f"{url}/registries/{console_account}/")
            page.locator("main", has_text="journey/hello").wait_for()
            screenshot("9-console-registry")

            # Deployed to two fleet hosts with WHO set; the app answers on each.
            owner = build.owner
            hosts = [register(owner, fleet.plain, name="plain"), register(owner, fleet.tls, name="tls")]
            first = deploy(page, url, hosts, "Journey")
            screenshot("10-deployed")
            for fleet_host in (fleet.plain, fleet.tls):
                answer = http_get(f"http://{fleet_host.address}:8080/")
                assert "Hello Journey. Wish you were here." in answer

            # A second release, then back to the first.
            second = deploy(page, url, hosts, "Second")
            assert "Hello Second." in http_get(f"http://{fleet.plain.address}:8080/")
            # Rolling back asks first (data-confirm): the user says yes.
            page.once("dialog", lambda dialog: dialog.accept())
            page.click("form[action$='/rollback/'] button[type=submit]")
            page.wait_for_url(f"{url}/deployments/*/")
            page.locator("#deployment-status", has_text="Succeeded").wait_for(timeout=LONG)
            rollback = Deployment.objects.latest("pk")
            assert rollback.rollback_of == first and rollback.pk > second.pk
            screenshot("11-rolled-back")
            for fleet_host in (fleet.plain, fleet.tls):
                assert "Hello Journey. Wish you were here." in http_get(f"http://{fleet_host.address}:8080/")
            # Only the rolled-back release runs on each host.
            for fleet_host in (fleet.plain, fleet.tls):
                with fleet_host.engine() as engine:
                    running = engine.api.containers(filters={"label": "console.deployment.name=hello"})
                assert [c["Labels"]["console.deployment.id"] for c in running] == [str(rollback.pk)]
    finally:
        remove_app(fleet, "hello")
        remove_images(image_id)
