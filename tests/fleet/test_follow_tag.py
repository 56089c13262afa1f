"""Deployments that follow a tag (fleet/services/follow.py): which pushes redeploy what, by digest, with what
recorded; approval; refusals. The engine-side proof is tests/fleet/test_follow_tag_engine.py."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from console.audit.constants import Action
from console.audit.models import AuditEvent
from console.audit.words import summary
from console.constants import JobStatus
from console.errors import Conflict
from console.events import services as events
from console.events.constants import EventKind
from fleet.constants import PendingStatus
from fleet.models import Deployment, Host, PendingRelease
from fleet.services import follow
from fleet.services.deployments import create_deployment
from registry.services import ensure_console_account

pytestmark = pytest.mark.django_db

DIGEST_A, DIGEST_B, DIGEST_C = ("sha256:" + c * 64 for c in "abc")


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    sent = []
    monkeypatch.setattr("console.jobs.send", lambda name, *args, **options: sent.append((name, args)) or "t")
    monkeypatch.setattr("console.jobs.enqueue.send", lambda name, *args, **options: "t")
    return sent


@pytest.fixture
def host(owner):
    return Host.objects.create(owner=owner, name="web", url="tcp://10.9.9.9:2375")


def deployed(owner, host, settings, approval=False, **extra) -> Deployment:
    deployment = create_deployment(owner, {
        "name": "shop", "image": f"{settings.REGISTRY_ADDRESS}/alice/app:latest", "hosts": [host.pk],
        "registry": ensure_console_account(owner).pk, "ports": {"8080/tcp": 8080}, "env": {"A": "1"},
        "follow_tag": "alice/app:latest", "follow_approval": approval, **extra})
    Deployment.objects.filter(pk=deployment.pk).update(status=JobStatus.SUCCEEDED)
    return deployment


def pushed(owner, digest, tag="latest", repository="alice/app", key=None):
    return events.record(owner, EventKind.IMAGE_PUSHED, key=key or f"registry:{digest}:{tag}", repository=repository,
                         data={"tag": tag, "digest": digest, "actor": "alice"})


def test_a_push_that_moves_the_tag_deploys_its_digest(owner, host, settings, no_broker,
                                                       django_capture_on_commit_callbacks):
    first = deployed(owner, host, settings)
    with django_capture_on_commit_callbacks(execute=True):
        event = pushed(owner, DIGEST_A)
    assert ("fleet.follow_tag", (event.pk,)) in no_broker
    [release] = follow.follow_pushed_tag(event.pk)
    assert release.image == f"{settings.REGISTRY_ADDRESS}/alice/app@{DIGEST_A}"
    assert release.registry_account_id == ensure_console_account(owner).pk
    assert [t.host_id for t in release.targets.all()] == [host.pk]
    assert (release.ports, release.env, release.follow_tag) == (first.ports, first.env, "alice/app:latest")
    assert release.trigger == {"by": "image.pushed", "event": event.pk, "tag": "alice/app:latest",
                               "digest": DIGEST_A, "pushed_by": "alice", "approved_by": None}
    # The same digest again (a retry, a push that does not move the tag) deploys nothing new.
    Deployment.objects.filter(pk=release.pk).update(status=JobStatus.SUCCEEDED)
    assert follow.follow_pushed_tag(pushed(owner, DIGEST_A, key="again").pk) == []


def test_other_tags_other_owners_and_apps_that_stopped_following_are_left_alone(owner, outsider, host, settings,
                                                                                 no_broker):
    deployed(owner, host, settings)
    assert follow.follow_pushed_tag(pushed(owner, DIGEST_A, tag="dev").pk) == []
    assert follow.follow_pushed_tag(pushed(outsider, DIGEST_A, repository="alice/app", key="o").pk) == []
    no_broker.clear()
    stopped = create_deployment(owner, {"name": "shop", "image": "x/y:1", "hosts": [host.pk],
                                        "registry": ensure_console_account(owner).pk})
    Deployment.objects.filter(pk=stopped.pk).update(status=JobStatus.SUCCEEDED)
    assert follow.follow_pushed_tag(pushed(owner, DIGEST_B).pk) == []
    assert Deployment.objects.count() == 2


def test_an_app_being_deployed_is_followed_once_it_ends(owner, host, settings):
    first = deployed(owner, host, settings)
    Deployment.objects.filter(pk=first.pk).update(status=JobStatus.RUNNING)
    event = pushed(owner, DIGEST_A)
    with pytest.raises(follow.AppBusy):
        follow.follow_pushed_tag(event.pk)
    Deployment.objects.filter(pk=first.pk).update(status=JobStatus.FAILED)
    assert len(follow.follow_pushed_tag(event.pk)) == 1


def test_with_approval_a_push_waits_and_a_newer_push_supersedes_it(owner, outsider, host, settings):
    deployed(owner, host, settings, approval=True)
    [older] = follow.follow_pushed_tag(pushed(owner, DIGEST_A).pk)
    [newer] = follow.follow_pushed_tag(pushed(owner, DIGEST_B).pk)
    assert isinstance(newer, PendingRelease) and Deployment.objects.count() == 1
    older.refresh_from_db()
    assert older.status == PendingStatus.SUPERSEDED
    with pytest.raises(Conflict):
        follow.approve(older, owner)
    release = follow.approve(newer, owner)
    assert release.image.endswith(f"@{DIGEST_B}") and release.trigger["approved_by"] == "alice"
    assert release.follow_approval is True
    newer.refresh_from_db()
    assert (newer.status, newer.release, newer.decided_by) == (PendingStatus.APPROVED, release, owner)
    with pytest.raises(Conflict):
        follow.decline(newer, owner)
    Deployment.objects.filter(pk=release.pk).update(status=JobStatus.SUCCEEDED)
    [third] = follow.follow_pushed_tag(pushed(owner, DIGEST_C).pk)
    assert follow.decline(third, owner).status == PendingStatus.DECLINED
    assert Deployment.objects.count() == 2
    # The decline is in the audit log, in words; the refused second decision above wrote nothing.
    [declined] = AuditEvent.objects.filter(action=Action.RELEASE_DECLINED)
    assert (declined.actor, declined.target_id, declined.detail["pending_release"]) == (owner, str(third.deployment_id),
                                                                                       third.pk)
    sentence = summary(declined)
    assert sentence.startswith(f"alice declined a new release of {third.deployment.name}"), sentence
    assert DIGEST_C in sentence


@pytest.mark.parametrize(("value", "words"), [("mallory/app:latest", "under alice/"), ("alice/app", "a tag"),
                                               (f"alice/app@{DIGEST_A}", "no digest"),
                                               ("127.0.0.1:5000/alice/app:1", "no registry"),
                                               ("Alice/App:1", "lowercase"), (["x"], "Name a repository")])
def test_it_refuses_what_cannot_be_followed(owner, host, settings, value, words):
    with pytest.raises(ValidationError) as refused:
        deployed(owner, host, settings, follow_tag=value)
    assert words in " ".join(refused.value.message_dict["follow_tag"])


def test_the_api_takes_follow_tag_and_decides_pending_releases(owner, outsider, host, settings, owner_api):
    answer = owner_api.post("/api/v1/deployments/", {
        "name": "shop", "image": f"{settings.REGISTRY_ADDRESS}/alice/app:latest", "hosts": [host.pk],
        "registry": ensure_console_account(owner).pk, "follow_tag": "alice/app:latest", "follow_approval": True,
    }, format="json")
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert (body["follow_tag"], body["follow_approval"], body["trigger"]) == ("alice/app:latest", True, None)
    Deployment.objects.update(status=JobStatus.SUCCEEDED)
    [pending] = follow.follow_pushed_tag(pushed(owner, DIGEST_A).pk)
    listed = owner_api.get("/api/v1/pending-releases/").json()
    assert [item["id"] for item in listed["results"]] == [pending.pk]
    assert listed["results"][0]["status"] == "pending" and listed["results"][0]["digest"] == DIGEST_A
    stranger = APIClient()
    stranger.force_authenticate(outsider)
    assert stranger.post(f"/api/v1/pending-releases/{pending.pk}/approve/").status_code == 404
    approved = owner_api.post(f"/api/v1/pending-releases/{pending.pk}/approve/")
    assert approved.status_code == 202, approved.json()
    assert approved.json()["trigger"]["approved_by"] == "alice"
    assert owner_api.post(f"/api/v1/pending-releases/{pending.pk}/decline/").status_code == 409


def test_the_deployment_page_shows_what_it_follows_and_decides(owner, host, settings, owner_client):
    first = deployed(owner, host, settings, approval=True)
    [pending] = follow.follow_pushed_tag(pushed(owner, DIGEST_A).pk)
    page = owner_client.get(f"/deployments/{first.pk}/").content.decode()
    assert "alice/app:latest" in page and "Approve" in page and DIGEST_A[:19] in page
    answer = owner_client.post(f"/pending-releases/{pending.pk}/approve/")
    release = Deployment.objects.order_by("-pk").first()
    assert answer.status_code == 302 and answer["Location"] == f"/deployments/{release.pk}/"
    page = owner_client.get(f"/deployments/{release.pk}/").content.decode()
    assert "Triggered by" in page and "approved by alice" in page


def test_a_swarm_deployment_follows_with_its_service_settings(owner, settings, monkeypatch):
    monkeypatch.setattr("fleet.services.deployments.check_host", lambda host: host)
    manager = Host.objects.create(owner=owner, name="swarm", url="tcp://127.0.0.1:2371", status="up",
                                  swarm={"id": "a" * 25, "managers": 1, "nodes": []})
    first = create_deployment(owner, {
        "name": "shop", "image": f"{settings.REGISTRY_ADDRESS}/alice/app:latest", "hosts": [manager.pk],
        "registry": ensure_console_account(owner).pk, "replicas": 3, "follow_tag": "alice/app:latest"})
    Deployment.objects.filter(pk=first.pk).update(status=JobStatus.SUCCEEDED)
    [release] = follow.follow_pushed_tag(pushed(owner, DIGEST_A).pk)
    assert release.swarm == first.swarm and release.swarm["replicas"] == 3
    assert release.image.endswith(f"@{DIGEST_A}") and [t.host_id for t in release.targets.all()] == [manager.pk]
