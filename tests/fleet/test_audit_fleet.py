"""The fleet's audit events: hosts created, updated and deleted, deployments started and rollbacks, through the
API (the browser calls the same services), with no secret in any event."""

from __future__ import annotations

import json

import pytest

from console.audit.models import AuditEvent
from console.constants import JobStatus
from fleet.models import Deployment, DeploymentTarget, Host
from tests.fixtures.fleet import issue, make_ca
from tests.fleet.conftest import HELLO


@pytest.fixture
def queued(monkeypatch):
    """Runs go to a list instead of the broker: these tests are about what is recorded when a run is asked for."""
    sent = []
    monkeypatch.setattr("fleet.tasks.run_deployment.delay",
                        lambda pk: sent.append(pk) or type("Result", (), {"id": "task-1"})())
    monkeypatch.setattr("fleet.tasks.check_host.delay", lambda pk: None)
    return sent


@pytest.fixture
def tls_material():
    ca = make_ca()
    cert, key = issue(ca, "console", client=True)
    return {"tls_ca_cert": ca.cert_pem, "tls_client_cert": cert, "tls_client_key": key}


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def assert_no_secret(event: AuditEvent, material: dict[str, str]) -> None:
    stored = json.dumps(event.detail) + event.target_label
    for text in material.values():
        assert text.strip().splitlines()[1] not in stored


def test_it_records_a_host_created_without_its_tls_material(owner, owner_api, queued, tls_material):
    answer = owner_api.post("/api/v1/hosts/", {"name": "edge", "url": "tcp://10.9.9.9:2376",
                                               "labels": {"env": "prod"}, **tls_material}, format="json")
    assert answer.status_code == 201, answer.json()

    (event,) = events("host_created")
    host = Host.objects.get()
    assert (event.actor, event.target_type, event.target_id, event.target_label) == (
        owner, "fleet.host", str(host.pk), "edge")
    assert event.detail == {"url": "tcp://10.9.9.9:2376", "labels": {"env": "prod"}, "tls": True}
    assert_no_secret(event, tls_material)


def test_it_records_which_host_fields_changed_never_their_values(owner, owner_api, queued, tls_material):
    host = Host.objects.create(owner=owner, name="edge", url="tcp://10.9.9.9:2376")
    answer = owner_api.patch(f"/api/v1/hosts/{host.pk}/", {"address": "edge.example", **tls_material},
                             format="json")
    assert answer.status_code == 200, answer.json()

    (event,) = events("host_updated")
    assert event.target_id == str(host.pk)
    assert event.detail == {"fields": ["address", "tls_ca_cert", "tls_client_cert", "tls_client_key"],
                            "url": "tcp://10.9.9.9:2376", "labels": {}, "tls": True}
    assert_no_secret(event, tls_material)


def test_it_records_a_host_deleted(owner, owner_api):
    host = Host.objects.create(owner=owner, name="edge", url="tcp://10.9.9.9:2375")
    assert owner_api.delete(f"/api/v1/hosts/{host.pk}/").status_code == 204

    (event,) = events("host_deleted")
    assert (event.target_id, event.target_label, event.detail) == (str(host.pk), "edge",
                                                                   {"url": "tcp://10.9.9.9:2375"})
    assert not Host.objects.exists()


def test_it_records_nothing_for_a_refused_host(owner_api, queued):
    answer = owner_api.post("/api/v1/hosts/", {"name": "edge", "url": "http://nowhere"}, format="json")
    assert answer.status_code == 400
    assert not AuditEvent.objects.filter(action__startswith="host_").exists()


def test_it_records_a_deployment_started_without_its_environment(owner, owner_api, images, queued,
                                                                 django_capture_on_commit_callbacks):
    host = Host.objects.create(owner=owner, name="h1", url="tcp://10.9.9.9:2375", labels={"env": "prod"})
    with django_capture_on_commit_callbacks(execute=True):
        answer = owner_api.post("/api/v1/deployments/", {
            "image": HELLO, "name": "hello", "selector": "env=prod", "ports": {"8080/tcp": 8080},
            "env": {"DB_PASSWORD": "hunter2-not-for-logs"}}, format="json")
    assert answer.status_code == 202, answer.json()

    (event,) = events("deploy_started")
    assert (event.actor, event.target_type, event.target_id) == (owner, "fleet.deployment", str(answer.json()["id"]))
    assert event.detail == {"name": "hello", "image": HELLO, "image_id": images[HELLO], "hosts": [host.name],
                            "selector": "env=prod", "registry": None, "number": 1}
    assert "hunter2" not in json.dumps(event.detail)
    assert not events("rollback")


def test_it_records_a_rollback_and_no_second_deploy_event(owner, owner_api, images, queued):
    host = Host.objects.create(owner=owner, name="h1", url="tcp://10.9.9.9:2375")
    releases = []
    for who in ("first", "second"):
        release = Deployment.objects.create(owner=owner, name="hello", image=HELLO, image_id=images[HELLO],
                                            env={"WHO": who}, status=JobStatus.SUCCEEDED)
        DeploymentTarget.objects.create(deployment=release, host=host, host_name=host.name,
                                        status=JobStatus.SUCCEEDED)
        releases.append(release)

    answer = owner_api.post(f"/api/v1/deployments/{releases[1].pk}/rollback/")
    assert answer.status_code == 202, answer.json()

    (event,) = events("rollback")
    assert event.target_id == str(answer.json()["id"])
    assert event.detail["release"] == releases[0].pk
    assert (event.detail["release_number"], event.detail["number"]) == (1, 3)
    assert (event.detail["name"], event.detail["image"], event.detail["hosts"]) == ("hello", images[HELLO], ["h1"])
    assert not events("deploy_started")


def test_it_records_nothing_for_a_refused_rollback(owner, owner_api, images, queued):
    only = Deployment.objects.create(owner=owner, name="hello", image=HELLO, image_id=images[HELLO],
                                     status=JobStatus.SUCCEEDED)
    assert owner_api.post(f"/api/v1/deployments/{only.pk}/rollback/").status_code == 400
    assert not AuditEvent.objects.filter(action__in=["rollback", "deploy_started"]).exists()
