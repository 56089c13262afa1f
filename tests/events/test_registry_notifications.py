"""A real `docker push` to the console's registry (the config the console writes, token auth, the real Docker CLI)
becomes exactly one `image.pushed` event through Distribution's real notifications."""

from __future__ import annotations

import time

import pytest
import requests
from django.contrib.auth import get_user_model

from console.events.models import Event
from registry.services import browse, ensure_console_account
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.engine, pytest.mark.registry, pytest.mark.django_db(transaction=True)]


def _events(kind: str, repository: str) -> list[Event]:
    return list(Event.objects.filter(kind=kind, repository=repository))


def _wait_for_events(kind: str, repository: str, timeout: float = 30) -> list[Event]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _events(kind, repository)
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no {kind} event for {repository}")


def test_a_docker_push_is_one_image_pushed_event_of_the_namespace_owner(written_registry, docker_cli):
    carol = get_user_model().objects.create_user("carol", "carol@example.com", PASSWORD)
    login = docker_cli("login", written_registry.address, "-u", "carol", "--password-stdin", input=PASSWORD)
    assert login.returncode == 0, login.stderr
    reference = f"{written_registry.address}/carol/app:1"
    assert docker_cli("tag", "busybox:1.35.0", reference).returncode == 0
    try:
        push = docker_cli("push", reference)
    finally:
        docker_cli("rmi", "--no-prune", reference)
    assert push.returncode == 0, push.stderr
    digest = push.stdout.split("digest: ", 1)[1].split()[0]
    [event] = _wait_for_events("image.pushed", "carol/app")
    assert event.owner == carol
    assert event.data["tag"] == "1" and event.data["digest"] == digest
    assert event.data["reference"] == reference and event.data["actor"] == "carol"
    # Layers (blobs) and the pulls the push made are not events; Distribution's retries add nothing either.
    time.sleep(3)
    assert Event.objects.filter(owner=carol).count() == 1
    assert "notifications" in (written_registry.directory / "config.yml").read_text()
    assert (written_registry.directory / "config.yml").stat().st_mode & 0o077 == 0

    # The console's own delete (the tags page's, a retention run's) goes through the registry. Distribution reports
    # the manifest (by digest) and each tag it took with it (by tag): two image.deleted events, once each.
    browse.delete_tag(carol, ensure_console_account(carol), "carol/app", "1")
    _wait_for_events("image.deleted", "carol/app")
    deadline = time.monotonic() + 20
    while len(_events("image.deleted", "carol/app")) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)
    deleted = {(event.data["tag"], event.data["digest"]) for event in _events("image.deleted", "carol/app")}
    assert deleted == {("1", ""), ("", digest)}
    assert all(event.owner == carol for event in _events("image.deleted", "carol/app"))


def test_nobody_else_can_post_a_fake_push(written_registry, live_server):
    get_user_model().objects.create_user("carol", "carol@example.com", PASSWORD)
    envelope = {"events": [{"id": "fake-1", "action": "push",
                            "target": {"repository": "carol/app", "tag": "1", "digest": "sha256:" + "0" * 64}}]}
    for headers in ({}, {"Authorization": "Bearer guessed"}):
        answer = requests.post(f"{live_server.url}/registry/notifications/", json=envelope, headers=headers,
                               timeout=10)
        assert answer.status_code == 401
    assert not Event.objects.exists()
