"""Security headers on every answer (console/security.py), and the client address behind proxies."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse

from console.security import DEFAULT_CSP, SecurityHeadersMiddleware, client_address
from tests.conftest import PASSWORD

EXPECTED = {
    "Content-Security-Policy": DEFAULT_CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def assert_secure(response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, name


def test_the_policy_allows_nothing_inline_and_no_other_origin():
    directives = dict(part.strip().split(" ", 1) for part in DEFAULT_CSP.split(";"))
    assert directives == {
        "default-src": "'self'", "script-src": "'self'", "style-src": "'self'", "img-src": "'self' data:",
        "object-src": "'none'", "frame-ancestors": "'none'", "base-uri": "'self'", "form-action": "'self'",
    }


@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/signup/", "/", "/api/v1/auth/me/", "/nowhere/",
                                  "/api/schema/", "/static/css/console.css"])
def test_it_sends_the_headers_on_pages_redirects_errors_and_the_api(client, db, path):
    response = client.get(path)
    assert response.status_code in {200, 302, 401, 404}
    assert_secure(response)


def test_it_sends_them_on_a_signed_in_page_and_a_csrf_failure(owner_client, owner):
    assert_secure(owner_client.get(reverse("accounts:token-list")))
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    refused = strict.post(reverse("accounts:token-list"), {"name": "x"})
    assert refused.status_code == 403
    assert_secure(refused)


def test_it_keeps_a_header_a_view_sets_itself(rf):
    def view(request):
        response = HttpResponse("ok")
        response["Cross-Origin-Opener-Policy"] = "unsafe-none"
        return response

    response = SecurityHeadersMiddleware(view)(rf.get("/"))
    assert response["Cross-Origin-Opener-Policy"] == "unsafe-none"
    assert response["Content-Security-Policy"] == DEFAULT_CSP


def test_it_takes_the_client_address_from_remote_addr_by_default(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    request = RequestFactory().get("/", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="6.6.6.6")
    assert client_address(request) == "10.1.2.3"


def test_behind_one_proxy_it_believes_only_the_entry_the_proxy_added(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    forged = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    assert client_address(forged) == "203.0.113.7"
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_address(forged) == "6.6.6.6"
    settings.TRUSTED_PROXY_COUNT = 3
    assert client_address(forged) == "10.0.0.1"


def test_behind_a_proxy_a_malformed_forwarded_entry_falls_back_to_remote_addr(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="not-an-address")
    assert client_address(request) == "10.0.0.1"
    assert client_address(None) is None


def test_with_production_settings_cookies_are_secure_and_https_answers_carry_hsts(client, owner, settings):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD},
                           HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
    assert response["Strict-Transport-Security"] == "max-age=3600"
    assert_secure(response)
    # Over plain HTTP (no proxy header), no HSTS: browsers ignore it there anyway.
    assert "Strict-Transport-Security" not in client.get(reverse("accounts:login"))
