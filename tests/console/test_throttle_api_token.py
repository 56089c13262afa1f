"""POST /api/v1/auth/token/ through the throttle: 429 with Retry-After once locked."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console.accounts.models import AccessToken
from tests.conftest import PASSWORD


@pytest.fixture(autouse=True)
def limits(settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_LOCK_SECONDS = 300
    settings.LOGIN_SLOWDOWN_AFTER = 100


def ask(api_client, password: str):
    return api_client.post(reverse("api-token"), {"username": "alice", "password": password, "name": "ci"},
                           format="json")


def test_it_answers_429_once_locked_and_issues_no_token(api_client, owner):
    for _ in range(3):
        assert ask(api_client, "wrong").status_code == 400
    response = ask(api_client, PASSWORD)
    assert response.status_code == 429
    assert response["Retry-After"] == "300"
    assert response.json() == {"detail": "Sign-in is locked after too many failed attempts. Try again in 5 minutes."}
    assert not AccessToken.objects.exists()


def test_the_browser_and_the_api_share_one_count(api_client, client, owner):
    for _ in range(2):
        client.post(reverse("accounts:login"), {"username": "alice", "password": "wrong"})
    ask(api_client, "wrong")
    assert ask(api_client, PASSWORD).status_code == 429
    assert client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD}).status_code == 429


def test_a_slowed_down_attempt_says_how_long_to_wait(api_client, owner, settings):
    settings.LOGIN_SLOWDOWN_AFTER = 1
    ask(api_client, "wrong")
    response = ask(api_client, PASSWORD)
    assert response.status_code == 429
    assert response["Retry-After"] == "1"
    assert "wait 1 second" in response.json()["detail"]


def test_a_success_still_issues_a_token(api_client, owner):
    ask(api_client, "wrong")
    response = ask(api_client, PASSWORD)
    assert response.status_code == 201
    assert AccessToken.objects.get().user == owner
