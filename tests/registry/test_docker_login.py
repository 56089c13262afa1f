"""The real `docker` CLI against a real Distribution registry that trusts the running console (token auth)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from console.accounts.services import create_access_token
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pusher(transactional_db):
    return get_user_model().objects.create_user("carol", "carol@example.com", PASSWORD)


@pytest.fixture
def other(transactional_db):
    return get_user_model().objects.create_user("dave", "dave@example.com", PASSWORD)


def _tag(docker_cli, reference: str) -> None:
    result = docker_cli("tag", "busybox:1.35.0", reference)
    assert result.returncode == 0, result.stderr


def _untag(docker_cli, reference: str) -> None:
    docker_cli("rmi", "--no-prune", reference)


def _login(docker_cli, registry, secret: str = PASSWORD):
    """`docker login` to the console's registry as carol, the secret on stdin."""
    return docker_cli("login", registry.address, "-u", "carol", "--password-stdin", input=secret)


def _push(docker_cli, reference: str):
    """busybox tagged as `reference` and pushed (the tag taken off again): the push's result."""
    _tag(docker_cli, reference)
    try:
        return docker_cli("push", reference)
    finally:
        _untag(docker_cli, reference)


def test_it_logs_in_with_the_console_password_and_pushes_to_its_namespace(console_registry, docker_cli, pusher):
    login = _login(docker_cli, console_registry)
    assert login.returncode == 0, login.stderr
    assert "Login Succeeded" in login.stdout
    push = _push(docker_cli, f"{console_registry.address}/carol/app:1")
    assert push.returncode == 0, push.stderr
    assert "digest: sha256:" in push.stdout


def test_it_logs_in_with_a_personal_access_token(console_registry, docker_cli, pusher):
    _, raw = create_access_token(pusher, "ci")
    login = _login(docker_cli, console_registry, raw)
    assert login.returncode == 0, login.stderr
    push = _push(docker_cli, f"{console_registry.address}/carol/token-app:1")
    assert push.returncode == 0, push.stderr


def test_it_refuses_a_push_into_another_users_namespace(console_registry, docker_cli, pusher, other):
    login = _login(docker_cli, console_registry)
    assert login.returncode == 0, login.stderr
    push = _push(docker_cli, f"{console_registry.address}/dave/app:1")
    assert push.returncode != 0
    assert "denied" in push.stderr.lower()


def test_it_refuses_a_login_with_a_wrong_password(console_registry, docker_cli, pusher):
    login = _login(docker_cli, console_registry, "not-it")
    assert login.returncode != 0
    assert "unauthorized" in login.stderr.lower()
    assert not (docker_cli.config_dir / "config.json").exists() or "auths" not in (
        docker_cli.config_dir / "config.json").read_text() or console_registry.address not in (
        docker_cli.config_dir / "config.json").read_text()
