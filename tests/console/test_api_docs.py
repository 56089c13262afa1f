"""/api/docs/: Swagger UI from drf-spectacular-sidecar's files, under the console's CSP, in a real Chromium."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.console.test_security_csp_browser import Violations


def test_it_serves_a_page_whose_assets_and_initialiser_are_local(client, db):
    response = client.get(reverse("api-docs"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "<style" not in html
    assert "<script>" not in html
    assert "http://" not in html and "https://" not in html
    script = client.get(reverse("api-docs"), {"script": ""})
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert reverse("api-schema") in script.content.decode()
    assert '"validatorUrl": null' in script.content.decode()


def test_it_refuses_a_post(client, db):
    assert client.post(reverse("api-docs")).status_code == 405


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_it_renders_every_endpoint_in_chromium_without_another_origin_or_a_csp_violation(live_server, page):
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    violations = Violations(page)
    response = page.goto(f"{live_server.url}/api/docs/")
    assert response.status == 200
    # Swagger UI draws one block per operation once it has fetched and read the schema.
    page.wait_for_selector(".opblock-summary-path[data-path='/api/v1/audit/']")
    assert page.locator(".opblock").count() > 10
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("console API")
    foreign = [url for url in requests if not url.startswith((live_server.url, "data:"))]
    assert foreign == []
    assert any(url.endswith("/api/schema/") for url in requests)
    assert violations.csp == []
    assert not [text for text in violations.messages if text.startswith("pageerror")]
