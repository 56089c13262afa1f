"""The Content-Security-Policy against a real headless Chromium: the console's pages run without a violation."""

from __future__ import annotations

import io

import pytest

from builds.services import repositories as build_services
from tests.builds.archive_factory import HELLO_TREE, tar_bytes
from tests.conftest import PASSWORD

# browser, page and screenshot are the run's shared fixtures (tests/conftest.py).
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class Violations:
    """What Chromium reports about the page: console messages that name the CSP, and uncaught errors."""

    def __init__(self, page) -> None:
        self.messages: list[str] = []
        page.on("console", lambda message: self.messages.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.messages.append(f"pageerror: {error}"))

    @property
    def csp(self) -> list[str]:
        return [text for text in self.messages if "Content Security Policy" in text]


def log_in(page, base_url: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("main form.form button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def test_the_anonymous_pages_run_without_a_csp_violation(live_server, page):
    violations = Violations(page)
    for path in ("/accounts/login/", "/accounts/signup/"):
        response = page.goto(f"{live_server.url}{path}")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("load")
    assert violations.csp == []


def test_the_signed_in_pages_run_without_a_csp_violation(live_server, page, owner, screenshot):
    repository = build_services.create_repository(owner, "hello")
    source = build_services.add_archive_source(repository, io.BytesIO(tar_bytes(HELLO_TREE, "gz")), "hello.tar.gz")
    violations = Violations(page)
    log_in(page, live_server.url)
    try:
        for path in ("/", "/accounts/tokens/", "/repositories/", f"/repositories/{repository.pk}/",
                     f"/sources/{source.pk}/", "/audit/", "/accounts/password/"):
            response = page.goto(f"{live_server.url}{path}")
            assert response.status == 200, path
            page.wait_for_load_state("load")
        screenshot("audit")
        # Every page of the main navigation, whoever adds it.
        page.goto(f"{live_server.url}/")
        for href in page.eval_on_selector_all("nav.mainnav a", "links => links.map(link => link.href)"):
            response = page.goto(href)
            assert response.status < 500, href
            page.wait_for_load_state("load")
        # The token page with a new token shown, and a script that draws on the page (the upload form).
        page.goto(f"{live_server.url}/accounts/tokens/")
        page.fill("#id_name", "ci")
        page.click("main form.form button[type=submit]")
        page.wait_for_selector("#new-token")
    finally:
        build_services.delete_repository(repository)
    assert violations.csp == []
    assert not [text for text in violations.messages if text.startswith("pageerror")]


def test_an_inline_script_would_be_reported(live_server, page, db):
    """The check above can fail: Chromium reports what the policy blocks in the console messages it reads."""
    violations = Violations(page)
    page.goto(f"{live_server.url}/accounts/login/")
    page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "document.title = 'inline ran'";
        document.body.appendChild(script);
        document.body.setAttribute("style", "color: red");
    }""")
    page.wait_for_function("() => true")
    assert page.title() != "inline ran"
    assert len(violations.csp) >= 1
