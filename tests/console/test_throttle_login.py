"""The login page through the throttle: failures lock the account with a clear form error and a 429."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from console.audit.models import AuditEvent
from tests.conftest import PASSWORD


@pytest.fixture(autouse=True)
def limits(settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_USERNAME_FAILURE_LIMIT = 6
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 10
    settings.LOGIN_LOCK_SECONDS = 600
    # No slowdown before the lock here: test_throttle_service covers it with a clock it can move.
    settings.LOGIN_SLOWDOWN_AFTER = 100


def log_in(client, password: str, username: str = "alice", **extra):
    return client.post(reverse("accounts:login"), {"username": username, "password": password}, **extra)


def test_it_locks_after_the_limit_and_the_right_password_does_not_get_in(client, owner):
    for _ in range(3):
        assert log_in(client, "wrong").status_code == 200
    response = log_in(client, PASSWORD)
    assert response.status_code == 429
    assert response["Retry-After"] == "600"
    errors = response.context["form"].non_field_errors()
    assert errors == ["Sign-in is locked after too many failed attempts. Try again in 10 minutes."]
    assert b"Sign-in is locked" in response.content
    assert "_auth_user_id" not in client.session


def test_failures_from_one_address_do_not_lock_the_owner_out_elsewhere(client, owner):
    for _ in range(3):
        log_in(client, "wrong", REMOTE_ADDR="192.0.2.1")
    assert log_in(client, PASSWORD, REMOTE_ADDR="192.0.2.1").status_code == 429
    assert log_in(client, PASSWORD, REMOTE_ADDR="192.0.2.2").status_code == 302


def test_guessing_from_many_addresses_locks_the_username_everywhere(client, owner):
    for number in range(6):
        log_in(client, "wrong", REMOTE_ADDR=f"192.0.2.{10 + number}")
    response = log_in(client, PASSWORD, REMOTE_ADDR="198.51.100.1")
    assert response.status_code == 429
    assert response.context["form"].non_field_errors() == [
        "Sign-in is locked after too many failed attempts. Try again in 10 minutes."
    ]


def test_a_right_password_gets_in_from_an_address_where_others_mistyped(client, owner, outsider):
    # Two colleagues behind one office address keep mistyping their own passwords, up to their own locks.
    get_user_model().objects.create_user("carol", "carol@example.com", PASSWORD)
    for username in ("mallory", "carol"):
        for _ in range(3):
            log_in(client, "wrong", username=username, REMOTE_ADDR="203.0.113.5")
        assert log_in(client, PASSWORD, username=username, REMOTE_ADDR="203.0.113.5").status_code == 429
    response = log_in(client, PASSWORD, REMOTE_ADDR="203.0.113.5")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(owner.pk)


def test_an_address_trying_many_usernames_is_locked_for_all_of_them(client, owner, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 4
    for number in range(4):
        log_in(client, "wrong", username=f"nobody{number}", REMOTE_ADDR="192.0.2.7")
    response = log_in(client, PASSWORD, REMOTE_ADDR="192.0.2.7")
    assert response.status_code == 429
    assert response["Retry-After"] == "600"
    assert log_in(client, PASSWORD, REMOTE_ADDR="192.0.2.8").status_code == 302


def test_a_username_in_another_case_or_form_counts_against_the_same_account(client, owner):
    for username in ("Alice", "ALICE", "ａｌｉｃｅ"):
        log_in(client, "wrong", username=username)
    assert log_in(client, PASSWORD).status_code == 429


def test_a_successful_login_resets_the_usernames_count(client, owner):
    for _ in range(2):
        log_in(client, "wrong")
    assert log_in(client, PASSWORD).status_code == 302
    client.post(reverse("accounts:logout"))
    for _ in range(2):
        log_in(client, "wrong")
    response = log_in(client, PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(owner.pk)


def test_it_records_failures_without_the_password(client, owner):
    log_in(client, "a-wrong-password-s3cret")
    event = AuditEvent.objects.get(action="signin_failed")
    assert event.actor == owner
    assert event.detail == {"via": "browser", "reason": "bad_credentials"}
    assert event.address == "127.0.0.1"
    assert "s3cret" not in str(AuditEvent.objects.values_list())


def test_a_wrong_method_is_refused(client, db):
    assert client.put(reverse("accounts:login")).status_code == 405
