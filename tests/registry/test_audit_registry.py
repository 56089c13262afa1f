"""The registry's entries in the audit log: accounts created, changed and deleted, pushes and pulls started,
repositories made public and private. None holds the account's secret."""

from __future__ import annotations

import pytest

from console.audit.models import AuditEvent
from registry.models import Pull, Push

SECRET = "s3cr3t-registry-password-0451"
URL = "/api/v1/registries/"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def nothing_secret_is_stored(db):
    yield
    assert SECRET not in str(list(AuditEvent.objects.values_list()))


@pytest.fixture
def queued(monkeypatch):
    sent = []
    for task in ("run_push_task", "run_pull_task"):
        monkeypatch.setattr(f"registry.tasks.{task}.delay",
                            lambda pk, task=task: sent.append((task, pk)) or type("Result", (), {"id": ""})())
    return sent


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_it_records_an_account_created_changed_and_deleted(owner_api, owner):
    created = owner_api.post(URL, {"name": "hub", "kind": "dockerhub", "username": "alice", "secret": SECRET},
                             format="json").json()
    owner_api.patch(f"{URL}{created['id']}/", {"username": "bob", "secret": "another-" + SECRET}, format="json")
    owner_api.delete(f"{URL}{created['id']}/")
    [create], [update], [delete] = events("registry_created"), events("registry_updated"), events("registry_deleted")
    assert (create.actor, create.target_type, create.target_id) == (owner, "registry.registryaccount",
                                                                    str(created["id"]))
    assert create.detail == {"kind": "dockerhub", "url": "docker.io"}
    assert update.detail == {"fields": ["secret", "username"]}
    assert (delete.target_id, delete.detail) == (str(created["id"]), {"kind": "dockerhub"})


def test_a_refused_change_records_nothing(owner_api):
    assert owner_api.post(URL, {"name": "", "kind": "dockerhub"}, format="json").status_code == 400
    console_id = next(item["id"] for item in owner_api.get(URL).json()["results"] if item["kind"] == "console")
    assert owner_api.delete(f"{URL}{console_id}/").status_code == 400
    assert not AuditEvent.objects.filter(action__startswith="registry_").exists()


@pytest.mark.engine
def test_it_records_pushes_and_pulls_started(owner_api, owner, queued, django_capture_on_commit_callbacks):
    account = owner_api.post(URL, {"name": "lab", "kind": "generic", "url": "http://127.0.0.1:9",
                                   "secret": SECRET}, format="json").json()
    with django_capture_on_commit_callbacks(execute=True):
        pushed = owner_api.post("/api/v1/pushes/", {"image": "busybox:1.35.0", "registry": account["id"],
                                                    "repository": "team/app", "tag": "1"}, format="json")
        pulled = owner_api.post("/api/v1/pulls/", {"registry": account["id"], "reference": "team/app"},
                                format="json")
    assert (pushed.status_code, pulled.status_code) == (202, 202)
    [push], [pull] = events("push_started"), events("pull_started")
    assert (push.actor, push.target_id) == (owner, str(Push.objects.get().pk))
    # Each kind is numbered on its own: the user's first push and first pull are both number 1.
    assert push.detail == {"image": "busybox:1.35.0", "registry": "lab", "repository": "team/app", "tag": "1",
                           "number": 1}
    assert (pull.target_id, pull.detail) == (str(Pull.objects.get().pk), {"registry": "lab", "number": 1,
                                                                         "reference": "team/app:latest"})
    # A refused push is neither queued nor recorded.
    refused = owner_api.post("/api/v1/pushes/", {"image": "busybox:1.35.0", "registry": account["id"],
                                                 "repository": "Not Valid"}, format="json")
    assert refused.status_code == 400 and len(events("push_started")) == 1 and len(queued) == 2


def test_it_records_a_repository_made_public_then_private(owner):
    from registry import services

    services.make_public(owner, "alice/app")
    services.make_public(owner, "alice/app")
    services.make_private(owner, "alice/app")
    services.make_private(owner, "alice/app")
    assert [(e.action, e.target_label) for e in AuditEvent.objects.order_by("id")] == [
        ("registry_repository_public", "alice/app"), ("registry_repository_private", "alice/app")]
