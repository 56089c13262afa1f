"""The console's own 404, 403, 500 and 503 pages (console/views.py, templates/4xx/5xx.html): the navigation, a
short message and a way back, styled by the stylesheet alone (the CSP allows no inline style); JSON under /api/."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import OperationalError
from django.http import Http404
from django.test import RequestFactory
from django.urls import reverse

from console import views

pytestmark = pytest.mark.django_db


def assert_console_page(html: str) -> None:
    assert 'class="topbar"' in html and "/static/css/console" in html
    assert f'href="{reverse("dashboard")}"' in html
    # Nothing the CSP would block, nothing of Django's technical pages.
    assert "<style" not in html and not re.search(r"\sstyle=", html)
    assert "URLconf" not in html and "Traceback" not in html


def test_an_unknown_url_is_the_consoles_404_with_the_navigation(owner_client, settings):
    settings.DEBUG = False
    response = owner_client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert_console_page(html)
    # The address is not echoed: a 404 says nothing of what is there for someone else (test_authorisation_matrix).
    assert 'id="not-found"' in html and "/no-such-page/" not in html
    # The signed-in user's navigation, not the signed-out one.
    assert f'href="{reverse("builds:image-list")}"' in html and "Log out" in html
    assert "api/v1/" not in html and "admin/" not in html


def test_a_missing_object_is_the_same_404(owner_client, settings):
    settings.DEBUG = False
    response = owner_client.get(reverse("builds:build-detail", args=[999999]))
    assert response.status_code == 404
    assert 'id="not-found"' in response.content.decode()


def test_the_404_of_a_signed_out_visitor_offers_to_sign_in(client, settings):
    settings.DEBUG = False
    html = client.get("/no-such-page/").content.decode()
    assert_console_page(html)
    assert f'href="{reverse("accounts:login")}"' in html


def test_an_unknown_api_url_is_a_json_404(owner_api, settings):
    settings.DEBUG = False
    response = owner_api.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_a_missing_api_object_keeps_the_apis_own_404(owner_api, settings):
    settings.DEBUG = False
    response = owner_api.get("/api/v1/builds/999999/")
    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


def test_the_403_page_renders_with_the_navigation(owner):
    request = RequestFactory().get("/somewhere/")
    request.user = owner
    response = views.permission_denied(request, PermissionDenied())
    assert response.status_code == 403
    html = response.content.decode()
    assert_console_page(html)
    assert 'id="forbidden"' in html and "Log out" in html


def test_a_403_under_the_api_is_json():
    request = RequestFactory().get("/api/v1/things/")
    request.user = AnonymousUser()
    response = views.permission_denied(request, PermissionDenied())
    assert response.status_code == 403 and response["Content-Type"] == "application/json"


def test_the_500_page_needs_neither_the_database_nor_the_user(django_assert_num_queries):
    request = RequestFactory().get("/builds/1/")
    # No request.user at all: the authentication middleware may be what failed.
    with django_assert_num_queries(0):
        response = views.server_error(request)
    assert response.status_code == 500
    html = response.content.decode()
    assert_console_page(html)
    assert 'id="server-error"' in html


def test_a_500_under_the_api_is_json():
    response = views.server_error(RequestFactory().get("/api/v1/builds/"))
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    assert "detail" in json.loads(response.content)


def test_a_404_raised_by_a_view_uses_the_handler(rf, owner):
    request = rf.get("/gone/")
    request.user = owner
    response = views.page_not_found(request, Http404("No Build matches the given query."))
    # Django's message names the model and the query: the page does not repeat it.
    assert "No Build matches" not in response.content.decode()


def test_a_lost_database_is_the_503_page(owner):
    request = RequestFactory().get("/builds/")
    request.session = {}
    response = views.DatabaseUnavailableMiddleware(lambda r: None).process_exception(
        request, OperationalError("connection refused"))
    assert response.status_code == 503 and response["Retry-After"] == "5"
    html = response.content.decode()
    assert_console_page(html)
    assert views.DATABASE_UNAVAILABLE in html


def test_a_form_refused_by_the_csrf_check_is_the_consoles_403(owner):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 403
    html = response.content.decode()
    assert_console_page(html)
    assert 'id="forbidden"' in html and "CSRF verification failed" not in html
