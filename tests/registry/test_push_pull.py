"""Pushes and pulls through real registries, run in-process (the worker path is the thin task around it)."""

from __future__ import annotations

import pytest

from console.constants import JobStatus
from console.engine import Engine
from registry import services
from registry.models import Pull, Push
from registry.tasks import run_pull_task, run_push_task
from registry.tokens import namespace_of
from tests.registry.helpers import account_for

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def push_through_api(api, image: str, registry_id: int, repository: str, tag: str = "1") -> dict:
    response = api.post("/api/v1/pushes/", {"image": image, "registry": registry_id, "repository": repository,
                                            "tag": tag}, format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "queued"
    return response.json()


def test_it_pushes_with_layer_progress_and_a_digest(owner_api, owner, htpasswd_registry, unique_image, all_logs,
                                                    capfd):
    account = account_for(owner, htpasswd_registry)
    queued = push_through_api(owner_api, unique_image, account.pk, "team/pushed")
    services.run_push(queued["id"])
    response = owner_api.get(f"/api/v1/pushes/{queued['id']}/")
    body = response.json()
    assert body["status"] == "succeeded", body["error"]
    assert body["digest"].startswith("sha256:")
    assert len(body["layers"]) == 1
    layer = body["layers"][0]
    assert set(layer) == {"id", "status", "current", "total", "done"}
    assert layer["status"] == "Pushed" and layer["total"] > 0 and layer["current"] == layer["total"]
    assert layer["done"] is True
    assert f"{htpasswd_registry.address}/team/pushed" in body["log"]
    # The registry has the tag, and browsing sees it.
    tags = owner_api.get(f"/api/v1/registries/{account.pk}/repositories/team/pushed/tags/").json()
    assert tags == {"name": "team/pushed", "tags": ["1"]}
    # The temporary name made for the push is gone from the build engine.
    with Engine.for_builds() as engine:
        assert not engine.image_exists(f"{htpasswd_registry.address}/team/pushed:1")
    secret = htpasswd_registry.password
    assert secret not in response.content.decode() + all_logs.text + "".join(capfd.readouterr())


def test_it_pulls_onto_the_build_engine(owner_api, owner, htpasswd_registry, unique_image, all_logs, capfd):
    account = account_for(owner, htpasswd_registry)
    pushed = push_through_api(owner_api, unique_image, account.pk, "team/pulled", "2")
    services.run_push(pushed["id"])
    digest = Push.objects.get(pk=pushed["id"]).digest
    with Engine.for_builds() as engine:
        # Only the pull may bring the layer back.
        engine.api.remove_image(unique_image, force=True)
        response = owner_api.post("/api/v1/pulls/", {"registry": account.pk, "reference": "team/pulled:2"},
                                  format="json")
        assert response.status_code == 202
        run_pull_task.apply(args=[response.json()["id"]])
        body = owner_api.get(f"/api/v1/pulls/{response.json()['id']}/").json()
        try:
            assert body["status"] == "succeeded", body["error"]
            assert body["digest"] == digest
            assert body["image_id"].startswith("sha256:")
            assert len(body["layers"]) == 1
            assert body["layers"][0]["status"] == "Pull complete"
            assert body["layers"][0]["total"] > 0
            assert body["layers"][0]["current"] == body["layers"][0]["total"]
            assert engine.image_exists(f"{htpasswd_registry.address}/team/pulled:2")
        finally:
            engine.api.remove_image(body["image_id"], force=True)
    secret = htpasswd_registry.password
    assert secret not in str(body) + all_logs.text + "".join(capfd.readouterr())


def test_a_pull_by_digest(owner, htpasswd_registry, unique_image):
    account = account_for(owner, htpasswd_registry)
    push = services.trigger_push(owner, unique_image, account, "team/bydigest", "3")
    services.run_push(push.pk)
    push.refresh_from_db()
    pull = services.trigger_pull(owner, account, f"team/bydigest@{push.digest}")
    services.run_pull(pull.pk)
    pull.refresh_from_db()
    assert pull.status == JobStatus.SUCCEEDED, pull.error
    assert pull.digest == push.digest


def test_a_wrong_password_fails_the_push_with_the_registrys_message(owner, htpasswd_registry, unique_image,
                                                                     all_logs):
    account = account_for(owner, htpasswd_registry, secret="wrong-secret-9876")
    push = services.trigger_push(owner, unique_image, account, "team/refused")
    run_push_task.apply(args=[push.pk])
    push.refresh_from_db()
    assert push.status == JobStatus.FAILED
    assert "authentication required" in push.error or "unauthorized" in push.error
    assert "wrong-secret-9876" not in push.error + all_logs.text


def test_a_pull_of_a_missing_tag_fails(owner, htpasswd_registry):
    account = account_for(owner, htpasswd_registry)
    pull = services.trigger_pull(owner, account, "team/never-pushed:9")
    services.run_pull(pull.pk)
    pull.refresh_from_db()
    assert pull.status == JobStatus.FAILED
    assert "not found" in pull.error or "unknown" in pull.error


def test_bad_requests_are_400_and_store_nothing(owner_api, owner, outsider, htpasswd_registry):
    account = account_for(owner, htpasswd_registry)
    others = account_for(outsider, htpasswd_registry)
    cases = [
        ({"image": "no-such-image:0", "registry": account.pk, "repository": "team/x"}, "image"),
        ({"image": "busybox:1.35.0", "registry": account.pk, "repository": "Team/X"}, "repository"),
        ({"image": "busybox:1.35.0", "registry": account.pk, "repository": "team/x", "tag": "-bad"}, "tag"),
        ({"image": "busybox:1.35.0", "registry": others.pk, "repository": "team/x"}, "registry"),
        ({"image": "busybox:1.35.0", "repository": "team/x"}, "registry"),
    ]
    for data, field in cases:
        response = owner_api.post("/api/v1/pushes/", data, format="json")
        assert response.status_code == 400, data
        assert field in response.json(), (data, response.json())
    for reference in ("", "Team/App", "team/app:-x", "team/app@sha256:short"):
        response = owner_api.post("/api/v1/pulls/", {"registry": account.pk, "reference": reference}, format="json")
        assert response.status_code == 400, reference
    assert not Push.objects.exists() and not Pull.objects.exists()


def test_an_outsider_gets_404(owner, api_client, outsider, htpasswd_registry):
    account = account_for(owner, htpasswd_registry)
    push = services.trigger_push(owner, "busybox:1.35.0", account, "team/x")
    pull = services.trigger_pull(owner, account, "team/x")
    api_client.force_authenticate(outsider)
    assert api_client.get(f"/api/v1/pushes/{push.pk}/").status_code == 404
    assert api_client.get(f"/api/v1/pulls/{pull.pk}/").status_code == 404
    assert api_client.get("/api/v1/pushes/").json()["results"] == []


def test_creating_enqueues_the_task_after_commit(owner_api, owner, htpasswd_registry,
                                                 django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr(run_push_task, "delay", lambda push_id: sent.append(push_id) or type("R", (), {"id": "t-1"}))
    account = account_for(owner, htpasswd_registry)
    with django_capture_on_commit_callbacks(execute=True):
        body = push_through_api(owner_api, "busybox:1.35.0", account.pk, "team/queued")
    assert sent == [body["id"]]
    assert Push.objects.get(pk=body["id"]).task_id == "t-1"


@pytest.mark.django_db(transaction=True)
def test_it_pushes_to_and_pulls_from_the_console_registry(console_registry, owner, outsider, unique_image):
    account = services.ensure_console_account(owner)
    push = services.trigger_push(owner, unique_image, account, "alice/mine", "1")
    services.run_push(push.pk)
    push.refresh_from_db()
    assert push.status == JobStatus.SUCCEEDED, push.error
    # The registry is the session's: other modules' repositories of Alice's may be listed too, all in her namespace.
    listed = services.list_repositories(account)
    assert "alice/mine" in listed
    assert all(name.startswith(f"{namespace_of(owner)}/") for name in listed), listed
    assert services.list_tags(account, "alice/mine") == ["1"]
    # Nobody else sees it in their listing, nor pulls it while it is private.
    theirs = services.ensure_console_account(outsider)
    assert not [name for name in services.list_repositories(theirs)
                if not name.startswith(f"{namespace_of(outsider)}/")]
    pull = services.trigger_pull(outsider, theirs, "alice/mine:1")
    services.run_pull(pull.pk)
    pull.refresh_from_db()
    assert pull.status == JobStatus.FAILED
    assert "denied" in pull.error or "unauthorized" in pull.error
    # Made public, anyone may pull it.
    services.make_public(owner, "alice/mine")
    pull = services.trigger_pull(outsider, theirs, "alice/mine:1")
    services.run_pull(pull.pk)
    pull.refresh_from_db()
    assert pull.status == JobStatus.SUCCEEDED, pull.error
    with Engine.for_builds() as engine:
        engine.api.remove_image(f"{console_registry.address}/alice/mine:1")


def test_pushing_into_another_namespace_of_the_console_registry_is_a_400(owner_api, owner):
    account = services.ensure_console_account(owner)
    response = owner_api.post("/api/v1/pushes/", {"image": "busybox:1.35.0", "registry": account.pk,
                                                  "repository": "mallory/app"}, format="json")
    assert response.status_code == 400
    assert "alice/" in str(response.json()["repository"])
