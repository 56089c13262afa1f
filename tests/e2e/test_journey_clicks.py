"""The newcomer's journey by clicking, in headless Chromium on real components (issue 16): sign up, upload
examples/hello, build it, push it, deploy it, deploy a second release from the first's Redeploy, roll back; no
image reference is ever typed (a tag name, a port, a password are). The build page leads to the push, the image
page to the deployment, the push and deploy forms open with the image picked, the deployment page names its
current release and its URL per host once it ends. A screenshot of each page goes to test-artifacts/.

As in test_journey.py, the deployment copies the built image from the build engine to each fleet host (save ->
load): the console's registry listens on this machine's 127.0.0.1, which the fleet's engines cannot reach.
"""

from __future__ import annotations

import re

import pytest

from builds.models import Build, Image
from console.constants import JobStatus
from fleet.models import Deployment
from registry.models import Push
from tests.builds.build_helpers import remove_images
from tests.e2e.test_journey import LONG, PASSWORD, hello_archive
from tests.fixtures.fleet import fleet  # noqa: F401  (fixture)
from tests.fixtures.registry import TOKEN_ISSUER, TOKEN_SERVICE, console_registry, token_registry  # noqa: F401
from tests.fixtures.worker import routed_to, running_worker
from tests.fleet.conftest import http_get, register, remove_app

pytestmark = [pytest.mark.browser, pytest.mark.engine, pytest.mark.django_db(transaction=True)]

TAG = "console-test/journey-hello:1"
APP = "journey-hello"


def wait_for_release(page, url: str) -> Deployment:
    """On a deployment's page: until it succeeded and the page (refreshed from the server) names it current."""
    page.wait_for_url(re.compile(rf"{re.escape(url)}/deployments/\d+/$"))
    page.locator("#deployment-status", has_text="Succeeded").wait_for(timeout=LONG)
    page.locator("#current-release .badge.current").wait_for(timeout=LONG)
    return Deployment.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))


def test_the_journey_by_clicking(live_server, page, screenshot, console_registry, fleet, tmp_path):  # noqa: F811
    url = live_server.url
    registry_env = {"REGISTRY_ADDRESS": console_registry.address, "REGISTRY_SERVICE": TOKEN_SERVICE,
                    "REGISTRY_ISSUER": TOKEN_ISSUER, "REGISTRY_DIR": str(console_registry.directory),
                    "REGISTRY_TOKEN_REALM": f"{url}/registry/token/"}
    # Confirmations (data-confirm) are answered yes, as the user would; what they asked is kept.
    asked: list[str] = []
    page.on("dialog", lambda dialog: asked.append(dialog.message) or dialog.accept())
    image_id = ""
    try:
        with running_worker(tmp_path, env=registry_env) as worker, routed_to(worker):
            page.goto(f"{url}/accounts/signup/")
            page.fill("#id_username", "journey")
            page.fill("#id_email", "journey@example.com")
            page.fill("#id_password1", PASSWORD)
            page.fill("#id_password2", PASSWORD)
            page.click("main form.form button[type=submit]")
            page.wait_for_url(f"{url}/")
            screenshot("01-dashboard")

            page.click("nav a[href='/repositories/']")
            page.click("main a.button[href='/repositories/new/']")
            page.fill("#id_name", "hello")
            page.click("main form.form button[type=submit]")
            page.wait_for_url(f"{url}/repositories/*/")
            page.set_input_files("#id_archive", str(hello_archive(tmp_path)))
            page.click("#upload-form button[type=submit]")
            page.wait_for_url(f"{url}/sources/*/")
            screenshot("02-source")

            page.click("#build-this")
            page.fill("#id_tags", TAG)
            page.click("#build-form button[type=submit]")
            page.wait_for_url(f"{url}/builds/*/")
            page.locator("#build-status", has_text="succeeded").wait_for(timeout=LONG)
            build = Build.objects.get()
            image_id = build.image_id
            assert build.status == JobStatus.SUCCEEDED and image_id
            # The finished build's page leads on: its image, Push, Deploy.
            page.reload()
            page.locator("#build-result").wait_for()
            screenshot("03-build-done")

            # Push: the form opens with the image picked, the console's registry and journey/<name> filled in.
            page.click("#push-built-image")
            page.wait_for_url(f"{url}/pushes/new/?image=*")
            record = Image.objects.get(image_id=image_id)
            assert page.locator("#id_picked").input_value() == str(record.pk)
            assert page.locator("#id_image").input_value() == ""
            assert page.locator("#id_repository").input_value() == f"journey/{APP}"
            assert "<your username>/<name>" in page.inner_text("#push-form")
            screenshot("04-push-form")
            page.fill("#id_tag", "1")
            page.click("#push-form button[type=submit]")
            page.wait_for_url(f"{url}/pushes/*/")
            page.locator("#job-status", has_text="Succeeded").wait_for(timeout=LONG)
            push = Push.objects.get()
            assert push.status == JobStatus.SUCCEEDED and push.image == image_id
            screenshot("05-pushed")

            # The image page, reached from the navigation: the pull command with its copy button, Deploy.
            page.click("nav a[href='/images/']")
            page.click(f"main a[href='/images/{record.pk}/']")
            pull = f"docker pull {push.target}"
            assert page.locator(f"#image-commands button.copy[data-copy='{pull}']").count() == 1
            assert "Not deployed yet." in page.inner_text("#image-deployments")
            screenshot("06-image")

            owner = build.owner
            hosts = [register(owner, fleet.plain, name="plain"), register(owner, fleet.tls, name="tls")]
            page.click("#deploy-image")
            page.wait_for_url(f"{url}/deployments/new/?image=*")
            assert page.locator("#id_picked").input_value() == str(record.pk)
            assert page.locator("#id_name").input_value() == APP
            assert page.locator("input[name=port_host]").first.input_value() == ""
            for host in hosts:
                page.check(f"input[name=hosts][value='{host.pk}']")
            page.locator("input[name=port_container]").first.fill("8080/tcp")
            page.locator("input[name=port_host]").first.fill("8080")
            page.locator("input[name=env_key]").first.fill("WHO")
            page.locator("input[name=env_value]").first.fill("Journey")
            # A second variable added and taken away again: it is not sent.
            page.click("[data-add-row=env-rows]")
            page.locator("#env-rows .row").nth(1).locator("input[name=env_key]").fill("EXTRA")
            page.locator("#env-rows .row").nth(1).locator("[data-remove-row]").click()
            assert page.locator("#env-rows .row").count() == 1
            screenshot("07-deploy-form")
            page.click("#deploy-form button[type=submit]")
            first = wait_for_release(page, url)
            assert first.image_id == image_id and first.env == {"WHO": "Journey"}
            assert "No successful release yet" not in page.inner_text("main")
            urls = page.inner_text("#current-urls")
            for fleet_host in (fleet.plain, fleet.tls):
                assert f"http://{fleet_host.address}:8080" in urls
                assert "Hello Journey. Wish you were here." in http_get(f"http://{fleet_host.address}:8080/")
            screenshot("08-deployed")

            # A second release from the first's Redeploy: the same image and hosts, another greeting.
            page.click("#redeploy")
            page.wait_for_url(f"{url}/deployments/new/?from={first.pk}")
            assert page.locator("#id_picked").input_value() == str(record.pk)
            page.locator("input[name=env_value]").first.fill("Second")
            page.click("#deploy-form button[type=submit]")
            second = wait_for_release(page, url)
            assert second.pk > first.pk and second.image_id == image_id
            assert "Hello Second." in http_get(f"http://{fleet.plain.address}:8080/")
            screenshot("09-second-release")

            # Back to the first, confirmed.
            page.click("#rollback-form button[type=submit]")
            rollback = wait_for_release(page, url)
            assert asked == [f"Roll back {APP} to release #{first.number} ({TAG} · {image_id[7:19]})?"]
            assert rollback.rollback_of == first and rollback.pk > second.pk
            assert page.locator("#releases tr.current").count() == 1
            for fleet_host in (fleet.plain, fleet.tls):
                assert "Hello Journey. Wish you were here." in http_get(f"http://{fleet_host.address}:8080/")
            screenshot("10-rolled-back")

            # The image page lists its deployments, the current one with its URL per host.
            page.click("nav a[href='/images/']")
            page.click(f"main a[href='/images/{record.pk}/']")
            deployments = page.inner_text("#image-deployments")
            assert f"{APP} #{rollback.number}" in deployments and f"{APP} #{first.number}" in deployments
            assert f"http://{fleet.plain.address}:8080" in deployments
            screenshot("11-image-deployments")
    finally:
        remove_app(fleet, APP)
        remove_images(image_id)
