"""Retention rules of the console's registry (registry/services/retention.py) against a real Distribution with
the console's token auth: the rule's API and page, the dry run and its byte count, a run deleting exactly the
preview's tags, and (with the real Docker CLI) every kept tag still pulling afterwards."""

from __future__ import annotations

import secrets

import pytest
from django.conf import settings
from django.urls import reverse

from console.audit.models import AuditEvent
from console.constants import JobStatus
from console.engine import Engine
from registry.models import RetentionRule, RetentionRun
from registry.services import ensure_console_account, retention
from registry.tokens import sign_token
from tests.conftest import PASSWORD
from tests.registry.helpers import make_unique_image
from tests.registry.test_tags_page import upload_image

pytestmark = [pytest.mark.registry, pytest.mark.django_db(transaction=True)]


def _push(server, repository: str, tags: list[str], created: str, sizes=(3000, 500)) -> dict:
    token = sign_token("alice", settings.REGISTRY_SERVICE,
                       [{"type": "repository", "name": repository, "actions": ["pull", "push"]}])["token"]
    return upload_image(server, repository, tags, created=created, layer_sizes=sizes,
                        headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def repository(console_registry):
    """alice/ret-*: v1 (January), v2 (February), v3 and latest (March, one image), prod (2023)."""
    name = f"alice/ret-{secrets.token_hex(4)}"
    images = {
        "v1": _push(console_registry, name, ["v1"], "2024-01-01T00:00:00Z"),
        "v2": _push(console_registry, name, ["v2"], "2024-02-01T00:00:00Z", sizes=(4000,)),
        "v3": _push(console_registry, name, ["v3", "latest"], "2024-03-01T00:00:00Z"),
        "prod": _push(console_registry, name, ["prod"], "2023-06-01T00:00:00Z"),
    }
    return name, images


def _url(account, name: str, tail: str = "") -> str:
    return f"/api/v1/registries/{account.pk}/repositories/{name}/retention/{tail}"


def test_the_api_sets_a_rule_previews_it_and_a_run_deletes_exactly_the_preview(owner, owner_api, repository):
    name, images = repository
    account = ensure_console_account(owner)
    assert owner_api.get(_url(account, name)).status_code == 404
    put = owner_api.put(_url(account, name), {"keep_last": 1, "protect": ["prod"], "keep_matching": []},
                        format="json")
    assert put.status_code == 200, put.json()
    assert put.json()["keep_last"] == 1 and put.json()["protect"] == ["prod"]
    assert owner_api.get(_url(account, name)).json()["repository"] == name
    preview = owner_api.get(_url(account, name, "preview/"))
    assert preview.status_code == 200
    body = preview.json()
    assert body["delete"] == ["v1", "v2"] and body["keep"] == ["latest", "prod", "v3"]
    # Every blob of v1 and v2 is their own (random layers, configs with their own dates).
    assert body["frees_bytes"] == images["v1"]["size"] + images["v2"]["size"]
    assert body["reasons"]["prod"] == "protected (prod)" and body["reasons"]["v3"] == "among the newest 1"

    started = owner_api.post(_url(account, name, "runs/"))
    assert started.status_code == 202 and started.json()["status"] == JobStatus.QUEUED
    run = retention.run_retention(started.json()["id"])
    assert run.status == JobStatus.SUCCEEDED, run.error
    run.refresh_from_db()
    assert run.deleted == ["v1", "v2"] and run.frees_bytes == body["frees_bytes"]
    after = owner_api.get(f"/api/v1/registries/{account.pk}/repositories/{name}/tags/").json()["tags"]
    assert after == ["latest", "prod", "v3"]
    runs = owner_api.get(_url(account, name, "runs/")).json()
    assert runs[0]["id"] == run.pk and "deleted v1" in runs[0]["log"]
    # The next preview has nothing left to delete.
    assert owner_api.get(_url(account, name, "preview/")).json()["delete"] == []


def test_a_tag_sharing_its_image_with_a_protected_tag_survives(owner, console_registry):
    name = f"alice/ret-{secrets.token_hex(4)}"
    _push(console_registry, name, ["old", "prod"], "2020-01-01T00:00:00Z")
    _push(console_registry, name, ["new"], "2024-01-01T00:00:00Z")
    account = ensure_console_account(owner)
    retention.set_rule(owner, account, name, {"keep_last": 1, "protect": ["prod"]})
    plan = retention.preview(account, name)
    assert plan.delete == [] and plan.reasons["old"] == "the same image as kept tag prod"
    run = retention.run_retention(retention.trigger_run(owner, account, name).pk)
    assert run.status == JobStatus.SUCCEEDED
    assert sorted(retention.plan(name, retention.Rule()).keep) == ["new", "old", "prod"]


def test_bytes_another_repository_shares_are_not_counted(owner, console_registry):
    name = f"alice/ret-{secrets.token_hex(4)}"
    image = _push(console_registry, name, ["a"], "2020-01-01T00:00:00Z")
    # An image with the same config (same bytes: the same date) in another user's repository: a collection frees
    # a's layers (random, its own), not the config.
    token = sign_token("bob", settings.REGISTRY_SERVICE,
                       [{"type": "repository", "name": f"bob/{name[6:]}", "actions": ["pull", "push"]}])["token"]
    upload_image(console_registry, f"bob/{name[6:]}", ["copy"], created="2020-01-01T00:00:00Z",
                 headers={"Authorization": f"Bearer {token}"})
    _push(console_registry, name, ["b"], "2024-01-01T00:00:00Z")
    account = ensure_console_account(owner)
    retention.set_rule(owner, account, name, {"keep_last": 1})
    plan = retention.preview(account, name)
    assert plan.delete == ["a"] and image["size"] > 3500
    assert plan.frees_bytes == 3500


def test_the_rule_is_checked(owner, owner_api, console_registry):
    account = ensure_console_account(owner)
    bad = owner_api.put(_url(account, "alice/app"), {"keep_matching": ["re:("]}, format="json")
    assert bad.status_code == 400 and "keep_matching" in bad.json()
    negative = owner_api.put(_url(account, "alice/app"), {"keep_last": -1}, format="json")
    assert negative.status_code == 400 and "keep_last" in negative.json()
    assert not RetentionRule.objects.exists()


def test_tenancy_another_user_cannot_see_set_or_run_a_rule(owner, outsider, api_client, owner_api, repository):
    name, _images = repository
    account = ensure_console_account(owner)
    retention.set_rule(owner, account, name, {"keep_last": 1})
    api_client.force_authenticate(outsider)
    for method, tail in (("get", ""), ("put", ""), ("delete", ""), ("get", "preview/"), ("post", "runs/")):
        response = getattr(api_client, method)(_url(account, name, tail), {}, format="json")
        assert response.status_code == 404, (method, tail)
    # In their own registry account, another user's repository is not theirs.
    theirs = ensure_console_account(outsider)
    response = api_client.put(_url(theirs, name), {"keep_last": 0}, format="json")
    assert response.status_code == 403
    assert api_client.get(_url(theirs, name, "preview/")).status_code == 403
    assert RetentionRule.objects.get().keep_last == 1 and not RetentionRun.objects.exists()


def test_the_daily_schedule_runs_every_rule(owner, repository):
    name, _images = repository
    account = ensure_console_account(owner)
    retention.set_rule(owner, account, name, {"keep_last": 3})
    started = retention.schedule_all()
    run = RetentionRun.objects.get(pk=started[0])
    assert run.scheduled and run.repository == name
    assert retention.run_retention(run.pk).status == JobStatus.SUCCEEDED
    run.refresh_from_db()
    # The newest three tags are latest and v3 (one image) and v2.
    assert run.deleted == ["prod", "v1"]


def test_the_page_shows_the_form_and_the_preview_and_saves_the_rule(owner_client, owner, repository):
    name, _images = repository
    account = ensure_console_account(owner)
    tags = reverse("registry:registry-tags", args=[account.pk, name])
    page = owner_client.get(tags).content.decode()
    assert 'id="retention-form"' in page and "retention-preview" not in page
    url = reverse("registry:registry-retention", args=[account.pk, name])
    saved = owner_client.post(url, {"keep_last": "1", "protect": "prod, latest", "keep_matching": ""}, follow=True)
    page = saved.content.decode()
    assert "Saved the retention rule" in page
    assert 'id="retention-preview"' in page and "kept: protected (prod)" in page
    assert "Deletes 2 tags" in page
    assert RetentionRule.objects.get(repository=name).protect == ["prod", "latest"]
    bad = owner_client.post(url, {"keep_matching": "re:("})
    assert bad.status_code == 400 and "is not a regular expression RE2 accepts" in bad.content.decode()
    applied = owner_client.post(url, {"apply": "1"}, follow=True).content.decode()
    assert "Retention run #" in applied
    assert AuditEvent.objects.filter(action="registry_retention_started").exists()


@pytest.mark.engine
def test_kept_tags_still_pull_with_the_docker_cli_after_a_run(owner, console_registry, docker_cli):
    name = f"alice/ret-{secrets.token_hex(4)}"
    reference = f"{console_registry.address}/{name}"
    login = docker_cli("login", console_registry.address, "-u", "alice", "--password-stdin", input=PASSWORD)
    assert login.returncode == 0, login.stderr
    made = []
    with Engine.for_builds() as engine:
        for tags in (["keep-1"], ["drop-1"], ["latest"]):
            local, image_id = make_unique_image(engine)
            made.append(image_id)
            for tag in tags:
                assert docker_cli("tag", local, f"{reference}:{tag}").returncode == 0
                pushed = docker_cli("push", f"{reference}:{tag}")
                assert pushed.returncode == 0, pushed.stderr
        try:
            account = ensure_console_account(owner)
            retention.set_rule(owner, account, name, {"keep_matching": ["keep-*"], "protect": ["latest"]})
            assert retention.preview(account, name).delete == ["drop-1"]
            assert retention.run_retention(retention.trigger_run(owner, account, name).pk).status == "succeeded"
            for image_id in made:
                engine.api.remove_image(image_id, force=True)
            for tag in ("keep-1", "latest"):
                pulled = docker_cli("pull", f"{reference}:{tag}")
                assert pulled.returncode == 0, pulled.stderr
            gone = docker_cli("pull", f"{reference}:drop-1")
            assert gone.returncode != 0 and "not found" in gone.stderr.lower()
        finally:
            for image_id in made:
                if engine.image_exists(image_id):
                    engine.api.remove_image(image_id, force=True)
