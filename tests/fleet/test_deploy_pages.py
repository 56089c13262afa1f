"""/deployments/, /deployments/new/, /deployments/<id>/ and its rollback."""

from __future__ import annotations

import pytest

from console.constants import JobStatus
from fleet.models import Deployment, Host
from tests.fleet.conftest import HELLO


@pytest.fixture
def queued(monkeypatch):
    sent = []
    monkeypatch.setattr("fleet.tasks.run_deployment.delay",
                        lambda pk: sent.append(pk) or type("Result", (), {"id": ""})())
    return sent


def test_the_form_deploys_with_port_and_env_rows(owner_client, owner, images, queued,
                                                 django_capture_on_commit_callbacks):
    host = Host.objects.create(owner=owner, name="h1", url="tcp://127.0.0.1:9")
    assert "port_container" in owner_client.get("/deployments/new/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        answer = owner_client.post("/deployments/new/", {
            "image": HELLO, "name": "hello", "hosts": [host.pk], "restart_policy": "always",
            "port_container": ["8080/tcp", ""], "port_host": ["8080", ""],
            "env_key": ["WHO", ""], "env_value": ["Sean and Karl", ""], "memory_limit": "64m",
        })
    deployment = Deployment.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/deployments/{deployment.pk}/"
    assert deployment.ports == {"8080/tcp": 8080} and deployment.env == {"WHO": "Sean and Karl"}
    assert deployment.memory_limit == 64 * 1024 * 1024 and queued == [deployment.pk]


def test_the_form_shows_what_is_wrong(owner_client, owner, images, queued):
    answer = owner_client.post("/deployments/new/", {"image": HELLO, "name": "hello", "restart_policy": "no",
                                                      "selector": "env=none"})
    assert "None of your hosts has the labels env=none." in answer.content.decode()
    assert not Deployment.objects.exists()


def test_the_deployment_page_shows_targets_releases_and_polls(owner_client, owner):
    host = Host.objects.create(owner=owner, name="h1", url="tcp://127.0.0.1:9")
    first = Deployment.objects.create(owner=owner, name="hello", image=HELLO, image_id="sha256:aaa",
                                      status=JobStatus.SUCCEEDED)
    second = Deployment.objects.create(owner=owner, name="hello", image=HELLO, status=JobStatus.RUNNING)
    second.targets.create(host=host, host_name="h1", status=JobStatus.SUCCEEDED, url="http://10.0.0.1:8080/")
    page = owner_client.get(f"/deployments/{second.pk}/").content.decode()
    assert 'href="http://10.0.0.1:8080/"' in page
    assert f"Roll back to release #{first.number}" in page
    assert "js/fleet-deployment.js" in page and "<script>" not in page
    assert f"/api/v1/deployments/{second.pk}/" in page
    assert "hello" in owner_client.get("/deployments/").content.decode()


def test_rollback_from_the_page(owner_client, owner, queued, monkeypatch):
    host = Host.objects.create(owner=owner, name="h1", url="tcp://127.0.0.1:9")
    first = Deployment.objects.create(owner=owner, name="hello", image=HELLO, image_id="sha256:aaa",
                                      status=JobStatus.SUCCEEDED, env={"WHO": "first"})
    first.targets.create(host=host, host_name="h1", status=JobStatus.SUCCEEDED)
    second = Deployment.objects.create(owner=owner, name="hello", image=HELLO, status=JobStatus.SUCCEEDED)
    monkeypatch.setattr("fleet.services.deployments.resolve_image", lambda owner, image, pulled: (image, image))
    answer = owner_client.post(f"/deployments/{second.pk}/rollback/")
    rollback = Deployment.objects.latest("pk")
    assert answer["Location"] == f"/deployments/{rollback.pk}/"
    assert (rollback.image, rollback.env, rollback.rollback_of) == ("sha256:aaa", {"WHO": "first"}, first)


def test_outsiders_and_wrong_methods(client, outsider, owner, owner_client):
    mine = Deployment.objects.create(owner=owner, name="hello", image=HELLO)
    assert owner_client.get(f"/deployments/{mine.pk}/rollback/").status_code == 405
    assert owner_client.post("/deployments/").status_code == 405
    client.force_login(outsider)
    assert client.get(f"/deployments/{mine.pk}/").status_code == 404
    assert client.post(f"/deployments/{mine.pk}/rollback/").status_code == 404
    assert "hello" not in client.get("/deployments/").content.decode()


def test_the_list_filters_by_host_and_search_and_says_what_to_do_when_empty(owner_client, owner):
    from tests.console.test_list_pages_queries import make_deployments

    empty = owner_client.get("/deployments/").content.decode()
    assert "Nothing deployed yet" in empty and 'href="/hosts/"' in empty and 'href="/deployments/new/"' in empty
    make_deployments(owner, 3, name="web", hosts=("h1",))
    make_deployments(owner, 2, name="api", hosts=("h2",))
    response = owner_client.get("/deployments/", {"host": "h2"})
    assert "2 deployments match the filters" in response.content.decode()
    assert {deployment.name for deployment in response.context["deployments"]} == {"api-0", "api-1"}
    searched = owner_client.get("/deployments/", {"q": "WEB"})
    assert len(searched.context["deployments"]) == 3
    none = owner_client.get("/deployments/", {"q": "nothing-like-it"}).content.decode()
    assert "No deployments match these filters" in none
    assert owner_client.get("/deployments/", {"status": "done"}).status_code == 400
