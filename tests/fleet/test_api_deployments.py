"""/api/v1/deployments/: what is accepted, what is refused and why, who sees what. Runs go to the broker,
which is recorded here instead; test_api_fleet.py runs deployments through a real worker."""

from __future__ import annotations

import pytest

from console.constants import JobStatus
from fleet.models import Deployment, Host
from tests.fleet.conftest import HELLO


@pytest.fixture
def two_hosts(owner):
    return [Host.objects.create(owner=owner, name=f"h{n}", url=f"tcp://127.0.0.1:{2370 + n}",
                                labels={"env": "prod" if n == 1 else "dev"}) for n in (1, 2)]


def request(**overrides):
    return {"image": HELLO, "name": "hello", "selector": "env=prod", "ports": {"8080/tcp": 8080},
            "env": {"WHO": "you"}, **overrides}


def test_it_answers_202_and_queues_one_run(owner_api, two_hosts, images, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        answer = owner_api.post("/api/v1/deployments/", request(), format="json")
    assert answer.status_code == 202
    body = answer.json()
    assert body["status"] == "queued" and body["image_id"] == images[HELLO]
    assert body["targets"] == [{"host": two_hosts[0].pk, "host_name": "h1", "status": "queued", "step": "",
                                "container_id": "", "url": "", "error": "", "service": None,
                                "started_at": None, "finished_at": None}]
    assert queued == [body["id"]]
    assert Deployment.objects.get().task_id == "task-1"


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"selector": "env=nowhere"}, "selector", "None of your hosts has the labels env=nowhere."),
    ({"selector": "", "hosts": []}, "hosts", "Choose at least one host, or give a selector like env=prod."),
    ({"hosts": [999]}, "hosts", "Choose hosts or give a selector, not both."),
    ({"selector": "", "hosts": [999]}, "hosts", "You have no host with id 999."),
    ({"name": "no spaces"}, "name", "Name the app with letters, digits and ._- (at most 63)."),
    ({"ports": {"8080/tcp": 70000}}, "ports", "'8080/tcp' -> 70000: ports are 1-65535, tcp or udp."),
    ({"ports": {"80": 8080, "81": 8080}}, "ports", "Host port 8080 is published twice."),
    ({"env": {"1BAD": "x"}}, "env", "'1BAD' is not a variable name (letters, digits, _)."),
    ({"memory_limit": "lots"}, "memory_limit", "Give bytes or a size like 64m or 1g."),
    ({"memory_limit": "1m"}, "memory_limit", "The engine needs at least 6m for a container."),
    ({"cpus": 0}, None, None),
    ({"image": "console-test/never-built:1"}, "image",
     "You have no image 'console-test/never-built:1': name one of your images (by tag, id or record number) or a "
     "shared base image."),
    ({"registry": 12345}, "registry", "You have no registry account with id 12345."),
])
def test_it_refuses_bad_deployments_with_a_message(owner_api, two_hosts, images, queued, overrides, field, message):
    answer = owner_api.post("/api/v1/deployments/", request(**overrides), format="json")
    if field is None:  # no limit is a valid choice
        assert answer.status_code == 202
        return
    assert answer.status_code == 400, answer.json()
    assert answer.json() == {field: [message]}
    assert not Deployment.objects.exists()
    assert queued == []


def test_it_refuses_a_second_run_of_an_app_still_deploying(owner_api, owner, two_hosts, images, queued):
    Deployment.objects.create(owner=owner, name="hello", image=HELLO, status=JobStatus.RUNNING)
    answer = owner_api.post("/api/v1/deployments/", request(), format="json")
    assert answer.status_code == 400
    assert "is being deployed right now" in answer.json()["name"][0]


def test_rollback_needs_an_earlier_release(owner_api, owner, two_hosts, images, queued):
    only = Deployment.objects.create(owner=owner, name="hello", image=HELLO, status=JobStatus.SUCCEEDED)
    answer = owner_api.post(f"/api/v1/deployments/{only.pk}/rollback/")
    assert answer.status_code == 400
    assert answer.json() == {
        "detail": f"There is no successful release of hello before #{only.number} to roll back to."}


def test_outsiders_see_nothing(api_client, outsider, owner, two_hosts, images, queued):
    mine = Deployment.objects.create(owner=owner, name="hello", image=HELLO, status=JobStatus.SUCCEEDED)
    api_client.force_authenticate(outsider)
    assert api_client.get("/api/v1/deployments/").json()["results"] == []
    assert api_client.get(f"/api/v1/deployments/{mine.pk}/").status_code == 404
    assert api_client.post(f"/api/v1/deployments/{mine.pk}/rollback/").status_code == 404
    answer = api_client.post("/api/v1/deployments/", request(selector="", hosts=[two_hosts[0].pk]), format="json")
    assert answer.status_code == 400
    assert Deployment.objects.count() == 1


def test_deployments_cannot_be_changed_or_deleted(owner_api, owner):
    mine = Deployment.objects.create(owner=owner, name="hello", image=HELLO)
    assert owner_api.delete(f"/api/v1/deployments/{mine.pk}/").status_code == 405
    assert owner_api.patch(f"/api/v1/deployments/{mine.pk}/", {}, format="json").status_code == 405
