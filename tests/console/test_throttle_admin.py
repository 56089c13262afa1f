"""/admin/login/ through the login throttle: the same counters as the console's own login page."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from console.audit.models import AuditEvent
from tests.conftest import PASSWORD

URL = "/admin/login/"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_USERNAME_FAILURE_LIMIT = 10
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 10
    settings.LOGIN_LOCK_SECONDS = 600
    settings.LOGIN_SLOWDOWN_AFTER = 100


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("root", "root@example.com", PASSWORD, is_staff=True,
                                                is_superuser=True)


def log_in(client, password: str, username: str = "root", **extra):
    return client.post(URL, {"username": username, "password": password, "next": "/admin/"}, **extra)


def test_it_logs_staff_in(client, staff):
    response = log_in(client, PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(staff.pk)


def test_guessing_a_staff_password_locks_it_even_for_the_right_one(client, staff):
    for _ in range(3):
        response = log_in(client, "wrong")
        assert response.status_code == 200
        assert "_auth_user_id" not in client.session
    response = log_in(client, PASSWORD)
    assert response.status_code == 429
    assert response["Retry-After"] == "600"
    assert b"Sign-in is locked after too many failed attempts. Try again in 10 minutes." in response.content
    assert "_auth_user_id" not in client.session
    failures = AuditEvent.objects.filter(action="signin_failed", actor=staff)
    assert failures.filter(detail__via="admin", detail__reason="bad_credentials").count() == 3
    assert failures.filter(detail__reason="locked").count() == 1


def test_the_lock_ends(client, staff, monkeypatch):
    from console import throttle

    for _ in range(3):
        log_in(client, "wrong")
    later = throttle.now() + 601
    monkeypatch.setattr(throttle, "now", lambda: later)
    assert log_in(client, PASSWORD).status_code == 302


def test_the_admin_and_the_login_page_share_one_count(client, staff):
    client.post("/accounts/login/", {"username": "root", "password": "wrong"})
    client.post("/api/v1/auth/token/", {"username": "root", "password": "wrong"}, content_type="application/json")
    log_in(client, "wrong")
    assert log_in(client, PASSWORD).status_code == 429
    assert client.post("/accounts/login/", {"username": "root", "password": PASSWORD}).status_code == 429


def test_a_user_who_is_not_staff_is_refused_without_a_session(client, owner):
    response = log_in(client, PASSWORD, username="alice")
    assert response.status_code == 200
    assert b"staff account" in response.content
    assert "_auth_user_id" not in client.session


def test_the_admin_index_still_asks_for_a_login(client, db):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response.url.startswith(URL)
