"""Garbage collection and storage at a glance without a registry: who may start a collection, what the token
endpoint and the deletes answer while one runs, the supervisor's lease, the byte counts per repository and user,
the pages."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from console.audit.models import AuditEvent
from console.constants import JobStatus
from registry import maintenance
from registry.constants import READ_ONLY
from registry.models import GarbageCollection
from registry.services import browse, ensure_console_account, gc, usage
from registry.storage import Image, StorageIndex
from tests.conftest import PASSWORD
from tests.registry.test_token_endpoint import ask, basic, claims_of, signing  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db


def test_only_staff_start_a_collection(owner, staff, settings, tmp_path):
    settings.REGISTRY_DIR = tmp_path
    with pytest.raises(gc.StaffOnly, match="Only staff"):
        gc.trigger_gc(owner)
    job = gc.trigger_gc(staff)
    assert job.status == JobStatus.QUEUED and job.requested_by == staff
    assert AuditEvent.objects.get(action="registry_gc_started").actor == staff
    with pytest.raises(gc.Conflict, match=f"#{job.pk} is queued or running already"):
        gc.trigger_gc(staff)


def test_a_registry_without_its_supervisor_is_not_collected(staff, settings, tmp_path):
    settings.REGISTRY_DIR = tmp_path
    job = gc.run_gc(gc.trigger_gc(staff).pk)
    assert job.status == JobStatus.FAILED and job.error in (gc.NO_SUPERVISOR, gc.NO_BINARY)
    assert not (tmp_path / "run" / "lease.json").exists()


def test_the_token_endpoint_refuses_push_while_a_collection_runs(client, owner, staff, signing):  # noqa: F811
    GarbageCollection.objects.create(requested_by=staff, status=JobStatus.RUNNING)
    refused = ask(client, "repository:alice/app:pull,push", auth=basic("alice", PASSWORD))
    assert refused.status_code == 403
    assert refused.json()["errors"] == [{"code": "DENIED", "message": READ_ONLY}]
    pull = ask(client, "repository:alice/app:pull", auth=basic("alice", PASSWORD))
    assert pull.status_code == 200
    assert claims_of(pull, signing)["access"] == [{"type": "repository", "name": "alice/app", "actions": ["pull"]}]


def test_deletes_are_refused_while_a_collection_runs(owner, staff):
    GarbageCollection.objects.create(requested_by=staff, status=JobStatus.RUNNING)
    with pytest.raises(browse.RegistryReadOnly) as caught:
        browse.delete_tag(owner, ensure_console_account(owner), "alice/app", "v")
    assert caught.value.status == 503 and str(caught.value) == READ_ONLY


def test_the_token_endpoint_never_grants_delete(client, owner, signing):  # noqa: F811
    response = ask(client, "repository:alice/app:pull,push,delete,*", auth=basic("alice", PASSWORD))
    assert claims_of(response, signing)["access"] == [
        {"type": "repository", "name": "alice/app", "actions": ["pull", "push"]}]


def test_the_lease_is_read_only_until_it_expires(tmp_path):
    assert maintenance.wanted_mode(tmp_path) == maintenance.READ_WRITE
    maintenance.hold_read_only(tmp_path, 60, "test")
    assert maintenance.wanted_mode(tmp_path) == maintenance.READ_ONLY
    lease = json.loads((tmp_path / "run" / "lease.json").read_text())
    assert maintenance.wanted_mode(tmp_path, now=lease["until"] + 1) == maintenance.READ_WRITE
    maintenance.release(tmp_path)
    assert maintenance.wanted_mode(tmp_path) == maintenance.READ_WRITE
    (tmp_path / "run" / "lease.json").write_text("not json")
    assert maintenance.wanted_mode(tmp_path) == maintenance.READ_WRITE


def test_a_supervisor_that_is_gone_is_not_serving(tmp_path):
    assert not maintenance.supervised(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "state.json").write_text(json.dumps({"mode": "readwrite", "pid": 2 ** 22 + 7, "since": 0}))
    assert not maintenance.supervised(tmp_path)


# -- storage at a glance ------------------------------------------------------------------------------------------


def _index() -> StorageIndex:
    def image(name, *blobs):
        return Image(f"sha256:{name * 64}", frozenset(blobs))

    return StorageIndex(
        tags={"alice/app": {"v1": "sha256:" + "1" * 64, "v2": "sha256:" + "2" * 64},
              "alice/tool": {"x": "sha256:" + "3" * 64},
              "bob/app": {"y": "sha256:" + "4" * 64}},
        images={i.digest: i for i in (image("1", "c1", "base", "a1"), image("2", "c2", "base", "a2"),
                                      image("3", "c3", "base"), image("4", "c4", "a1"))},
        sizes={"c1": 1, "c2": 2, "c3": 3, "c4": 4, "base": 1000, "a1": 100, "a2": 200},
    )


def test_usage_counts_each_blob_once_and_unique_per_holder():
    found = usage.usage(_index())
    alice = found["alice"]
    app, tool = alice.repositories
    assert (app.name, app.tags, app.total_bytes) == ("alice/app", 2, 1 + 2 + 1000 + 100 + 200)
    # base is also alice/tool's, a1 also bob's.
    assert app.unique_bytes == 1 + 2 + 200
    assert (tool.total_bytes, tool.unique_bytes) == (1003, 3)
    assert alice.total_bytes == 1 + 2 + 3 + 1000 + 100 + 200
    # Only a1 is shared with another user.
    assert alice.unique_bytes == alice.total_bytes - 100
    assert (found["bob"].total_bytes, found["bob"].unique_bytes) == (104, 4)


def test_the_storage_endpoint_answers_the_users_namespace_only(owner, owner_api, outsider, settings, tmp_path,
                                                                monkeypatch):
    monkeypatch.setattr(usage.storage, "read_index", lambda directory=None: _index())
    account = ensure_console_account(owner)
    body = owner_api.get(f"/api/v1/registries/{account.pk}/storage/").json()
    assert body["namespace"] == "alice" and body["total_bytes"] == 1306 and body["unique_bytes"] == 1206
    assert [entry["name"] for entry in body["repositories"]] == ["alice/app", "alice/tool"]
    owner_api.force_authenticate(outsider)
    assert owner_api.get(f"/api/v1/registries/{account.pk}/storage/").status_code == 404
    assert owner_api.get(f"/api/v1/registries/{ensure_console_account(outsider).pk}/storage/").json() == {
        "namespace": "mallory", "total_bytes": 0, "unique_bytes": 0, "repositories": []}


def test_the_gc_page_is_for_staff(client, owner, staff, settings, tmp_path, monkeypatch):
    settings.REGISTRY_DIR = tmp_path
    monkeypatch.setattr(usage.storage, "read_index", lambda directory=None: _index())
    client.force_login(owner)
    assert client.get(reverse("registry:gc-list")).status_code == 403
    assert client.post(reverse("registry:gc-list")).status_code == 403
    client.force_login(staff)
    page = client.get(reverse("registry:gc-list")).content.decode()
    assert 'id="gc-form"' in page and "<td>alice</td>" in page and "<td>bob</td>" in page
    response = client.post(reverse("registry:gc-list"), {"delete_untagged": "1"})
    job = GarbageCollection.objects.get()
    assert response.status_code == 302 and response.url == reverse("registry:gc-detail", args=[job.pk])
    assert job.delete_untagged
    detail = client.get(response.url).content.decode()
    assert "Garbage collection #" in detail and 'id="gc"' in detail and "js/registry-gc.js" in detail
    client.force_login(owner)
    assert client.get(response.url).status_code == 403


def test_the_registry_page_shows_each_repositorys_size(owner_client, owner, monkeypatch):
    monkeypatch.setattr(usage.storage, "read_index", lambda directory=None: _index())
    from registry import views

    monkeypatch.setattr(views.services, "list_repositories", lambda account: ["alice/app", "alice/new"])
    account = ensure_console_account(owner)
    page = owner_client.get(reverse("registry:registry-detail", args=[account.pk])).content.decode()
    assert 'id="storage-total"' in page
    assert 'title="1306 bytes"' in page and 'title="1206 bytes"' in page
    # alice/app: 1303 in all, 203 only there; alice/new has nothing stored yet.
    assert 'title="1303 bytes"' in page and 'title="203 bytes"' in page
