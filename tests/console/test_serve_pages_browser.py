"""The console's own 404 page, the dashboard and the audit log in a real headless Chromium, DEBUG off (the live
server's): styled by the stylesheet (nothing the CSP blocks), the navigation there, no wider than the window at 1280
and at 390 px. Screenshots of each in the run's output folder."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console.audit.constants import Action
from console.audit.services import record
from tests.console.test_list_pages_queries import make_builds, make_repository, make_source
from tests.console.test_security_csp_browser import Violations, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTHS = (1280, 390)


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_the_404_page_is_the_consoles_styled_with_the_navigation(live_server, page, owner, screenshot):
    violations = Violations(page)
    log_in(page, live_server.url)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        response = page.goto(f"{live_server.url}/no-such-page/")
        assert response.status == 404
        assert page.locator("#not-found").is_visible()
        assert "URLconf" not in page.content()
        # The stylesheet applied: the top bar has its dark background, not the browser's default.
        background = page.evaluate("getComputedStyle(document.querySelector('.topbar')).backgroundColor")
        assert background not in ("rgba(0, 0, 0, 0)", "transparent")
        screenshot(f"404-{width}")
        assert fits(page), width
        page.click("#error-page a.button")
        page.wait_for_url(f"{live_server.url}/")
    assert violations.csp == []


def test_the_dashboard_and_the_audit_log_for_a_newcomer(live_server, page, owner, screenshot):
    source = make_source(make_repository(owner, "shop"))
    build = make_builds(owner, 1, source, name="shop")[0]
    record(owner, Action.BUILD_STARTED, target=build, detail={"repository": "shop", "tags": ["shop:0"]})
    violations = Violations(page)
    log_in(page, live_server.url)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        page.goto(f"{live_server.url}/")
        assert page.locator("#first-steps").is_visible()
        assert page.locator("#step-upload .badge").text_content() == "done"
        assert page.locator("#step-push .badge").text_content() == "to do"
        screenshot(f"dashboard-{width}")
        assert fits(page), width
        page.goto(f"{live_server.url}{reverse('audit:event-list')}")
        link = page.locator("#audit-events a", has_text=f"build #{build.pk} of shop")
        assert link.get_attribute("href") == reverse("builds:build-detail", args=[build.pk])
        screenshot(f"audit-{width}")
        assert fits(page), width
    page.click(f"#audit-events a:has-text('build #{build.pk} of shop')")
    page.wait_for_url(f"{live_server.url}{reverse('builds:build-detail', args=[build.pk])}")
    assert violations.csp == []
