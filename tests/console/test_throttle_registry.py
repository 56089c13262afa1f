"""GET /registry/token/ (docker login's Basic credentials) through the throttle, then the real docker CLI."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.urls import reverse

from console.accounts.services import create_access_token
from console.audit.models import AuditEvent
from registry.tokens import ensure_signing_material
from tests.conftest import PASSWORD
from tests.fixtures import registry as registry_fixtures

# Real Distribution registries and the docker CLI (tests/fixtures/registry.py).
token_registry = registry_fixtures.token_registry
console_registry = registry_fixtures.console_registry
docker_cli = registry_fixtures.docker_cli


@pytest.fixture(autouse=True)
def limits(settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_LOCK_SECONDS = 120
    settings.LOGIN_SLOWDOWN_AFTER = 100


@pytest.fixture
def signing(settings, tmp_path):
    ensure_signing_material(tmp_path)
    settings.REGISTRY_DIR = tmp_path
    settings.REGISTRY_SERVICE = "svc"


def basic(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


def ask(client, secret: str, username: str = "alice"):
    return client.get(reverse("registry:token-issue"), {"service": "svc", "scope": "repository:alice/app:pull"},
                      HTTP_AUTHORIZATION=basic(username, secret))


def test_it_answers_429_with_retry_after_once_locked_even_for_an_access_token(client, owner, signing):
    _, raw = create_access_token(owner, "ci")
    for _ in range(3):
        assert ask(client, "wrong").status_code == 401
    for secret in (PASSWORD, raw):
        response = ask(client, secret)
        assert response.status_code == 429
        assert response["Retry-After"] == "120"
        assert response.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        assert "token" not in response.json()


def test_an_access_token_that_works_is_not_a_failure(client, owner, signing):
    _, raw = create_access_token(owner, "ci")
    for _ in range(5):
        assert ask(client, raw).status_code == 200
    # Engines ask for a token on every pull and push: successes are not written to the audit log.
    assert not AuditEvent.objects.filter(action__in=["signin", "signin_failed"]).exists()


def test_anonymous_requests_are_not_counted(client, owner, signing):
    for _ in range(5):
        response = client.get(reverse("registry:token-issue"), {"service": "svc", "scope": "repository:alice/app:pull"})
        assert response.status_code == 200
    assert ask(client, PASSWORD).status_code == 200


def test_a_username_with_a_nul_byte_is_a_401_not_a_server_error(client, owner, signing):
    response = ask(client, PASSWORD, username="al\x00ice")
    assert response.status_code == 401
    assert AuditEvent.objects.get().target_label == "al\ufffdice"


def test_it_refuses_a_wrong_method(client, db):
    assert client.post(reverse("registry:token-issue")).status_code == 405


@pytest.mark.engine
@pytest.mark.django_db(transaction=True)
def test_docker_login_is_locked_after_repeated_failures(console_registry, docker_cli):
    get_user_model().objects.create_user("throttled", "t@example.com", PASSWORD)
    try:
        for _ in range(3):
            wrong = docker_cli("login", console_registry.address, "-u", "throttled", "--password-stdin",
                               input="wrong")
            assert wrong.returncode != 0
        locked = docker_cli("login", console_registry.address, "-u", "throttled", "--password-stdin",
                            input=PASSWORD)
        assert locked.returncode != 0
        # The engine passes the realm's answer on: "toomanyrequests: Sign-in is locked after too many ..."
        assert "toomanyrequests: Sign-in is locked" in locked.stderr
        failures = AuditEvent.objects.filter(action="signin_failed", actor_name="throttled")
        assert failures.filter(detail__reason="bad_credentials").count() >= 3
        assert failures.filter(detail__reason="locked").exists()
    finally:
        # The cache table is not emptied between transactional tests: leave no lock for later ones.
        cache.clear()
