"""The push page in headless Chromium: its script polls the API and draws a progress bar per layer."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from builds.models import Image
from console.engine import Engine
from registry import services
from tests.conftest import PASSWORD
from tests.registry.helpers import account_for

pytestmark = [pytest.mark.browser, pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def engine_id(reference: str) -> str:
    with Engine.for_builds() as engine:
        return engine.api.inspect_image(reference)["Id"]


def test_the_push_page_follows_the_push_to_its_end(live_server, page, htpasswd_registry, unique_image):  # noqa: F811
    user = get_user_model().objects.create_user("erin", "erin@example.com", PASSWORD)
    account = account_for(user, htpasswd_registry)
    Image.objects.create(owner=user, image_id=engine_id(unique_image), tags=[unique_image])
    push = services.trigger_push(user, unique_image, account, "erin/page", "1")
    page.goto(f"{live_server.url}/accounts/login/?next=/pushes/{push.pk}/")
    page.fill("#id_username", "erin")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#job-status:has-text('Queued')")
    services.run_push(push.pk)
    page.wait_for_selector("#job-status:has-text('Succeeded')")
    bar = page.locator("#layers progress")
    assert bar.count() == 1
    assert bar.get_attribute("max") == bar.evaluate("b => String(b.value)")
    assert page.locator("#job-digest").inner_text().startswith("sha256:")
    assert "erin/page" in page.locator("#job-log").inner_text()
    assert htpasswd_registry.password not in page.content()
