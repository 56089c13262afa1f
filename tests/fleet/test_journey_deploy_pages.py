"""The deploy form's image picker and its starting points (`?image=`, `?from=`), the port and environment rows, the
deployment page's current release, grouped errors, Retry and Redeploy, and the API's redeploy action."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from console.audit.models import AuditEvent
from console.constants import JobStatus
from fleet.models import Deployment, Host
from fleet.services import deployments
from tests.builds.test_images_fixtures import make_image


@pytest.fixture
def queued(monkeypatch):
    sent = []
    monkeypatch.setattr("fleet.tasks.run_deployment.delay",
                        lambda pk: sent.append(pk) or type("Result", (), {"id": ""})())
    return sent


@pytest.fixture
def granted(monkeypatch):
    """The engine's side of builds/access.py's grant: the record the console chose, as if the engine held it."""
    from builds import access

    def grant_image(owner, image, missing=""):
        found = access.grant(owner, image)
        return SimpleNamespace(record=found.record), found.image_id

    monkeypatch.setattr("fleet.services.deployments.grant_image", grant_image)


@pytest.fixture
def hello(owner):
    image = make_image(owner, "hello", ["a"], tags=["hello:1"])
    image.config = {**image.config, "exposed_ports": ["8080/tcp"]}
    image.save(update_fields=["config"])
    return image


@pytest.fixture
def host(owner):
    return Host.objects.create(owner=owner, name="h1", url="tcp://127.0.0.1:9")


def _selected(page: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}".*?</select>', page, re.S).group(0)
    return re.findall(r'<option value="(\d+)"[^>]*selected', select)


def test_it_opens_with_the_image_picked_and_the_app_named_after_it(owner_client, owner, outsider, hello):
    theirs = make_image(outsider, "theirs", ["c"])
    page = owner_client.get(f"/deployments/new/?image={hello.pk}").content.decode()
    assert _selected(page, "picked") == [str(hello.pk)]
    assert f"hello:1 · {hello.image_id[7:19]} · 2026-01-02" in page
    assert f'value="{theirs.pk}"' not in page and "theirs:1" not in page
    assert re.search(r'name="name"[^>]*value="hello"', page)
    assert "js/picker.js" in page and "<script>" not in page


def test_it_fills_in_no_host_port_and_each_row_can_be_removed(owner_client, hello):
    page = owner_client.get(f"/deployments/new/?image={hello.pk}").content.decode()
    host_ports = re.findall(r'<input type="number" name="port_host"[^>]*>', page)
    assert host_ports and all('value=""' in field for field in host_ports)
    assert 'placeholder="8080"' in page and 'placeholder="8080/tcp"' in page
    assert page.count("data-remove-row") == 2


def test_a_picked_image_is_deployed_by_its_record(owner_client, owner, hello, host, queued, granted,
                                                 django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        answer = owner_client.post("/deployments/new/", {
            "picked": hello.pk, "image": "", "name": "hello", "hosts": [host.pk], "restart_policy": "no",
            "port_container": ["8080/tcp"], "port_host": ["8080"], "env_key": ["WHO"], "env_value": ["me"]})
    deployment = Deployment.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/deployments/{deployment.pk}/"
    assert deployment.image == "hello:1" and deployment.image_id == hello.image_id
    assert queued == [deployment.pk]


def test_picking_and_typing_at_once_or_neither_is_refused(owner_client, hello, host, queued, granted):
    both = owner_client.post("/deployments/new/", {"picked": hello.pk, "image": "hello:1", "name": "hello",
                                                   "hosts": [host.pk], "restart_policy": "no"})
    assert "Pick one of your images or type a reference, not both." in both.content.decode()
    neither = owner_client.post("/deployments/new/", {"name": "hello", "hosts": [host.pk], "restart_policy": "no"})
    assert "Pick one of your images, or type a reference below." in neither.content.decode()
    assert not Deployment.objects.exists() and not queued


def test_another_users_image_cannot_be_picked(owner_client, outsider, host, queued, granted):
    theirs = make_image(outsider, "theirs", ["c"])
    answer = owner_client.post("/deployments/new/", {"picked": theirs.pk, "name": "hello", "hosts": [host.pk],
                                                     "restart_policy": "no"})
    assert answer.status_code == 200 and "Select a valid choice" in answer.content.decode()
    assert not Deployment.objects.exists()


def test_redeploy_opens_the_form_with_the_earlier_settings(owner_client, owner, hello, host):
    earlier = Deployment.objects.create(owner=owner, name="hello", image="hello:1", image_id=hello.image_id,
                                        ports={"8080/tcp": 8081}, env={"WHO": "again"}, status=JobStatus.FAILED)
    earlier.targets.create(host=host, host_name=host.name, status=JobStatus.FAILED, error="boom")
    page = owner_client.get(f"/deployments/new/?from={earlier.pk}").content.decode()
    assert _selected(page, "picked") == [str(hello.pk)]
    assert 'value="8081"' in page and 'value="again"' in page and 'value="WHO"' in page
    assert re.search(rf'name="hosts" value="{host.pk}"[^>]*checked', page)


def test_retry_deploys_the_same_settings_again(owner_client, owner, hello, host, queued, granted,
                                               django_capture_on_commit_callbacks):
    earlier = Deployment.objects.create(owner=owner, name="hello", image="hello:1", image_id=hello.image_id,
                                        ports={"8080/tcp": 8081}, env={"WHO": "again"}, status=JobStatus.FAILED,
                                        restart_policy="always")
    earlier.targets.create(host=host, host_name=host.name, status=JobStatus.FAILED, error="boom")
    with django_capture_on_commit_callbacks(execute=True):
        answer = owner_client.post("/deployments/new/", {"again": earlier.pk})
    again = Deployment.objects.exclude(pk=earlier.pk).get()
    assert answer["Location"] == f"/deployments/{again.pk}/"
    assert (again.image_id, again.ports, again.env, again.restart_policy) == (
        hello.image_id, {"8080/tcp": 8081}, {"WHO": "again"}, "always")
    assert [target.host_id for target in again.targets.all()] == [host.pk] and queued == [again.pk]
    assert AuditEvent.objects.filter(detail__redeploy_of=earlier.pk).exists()


def test_retry_of_another_users_deployment_is_a_404(client, outsider, owner, host):
    earlier = Deployment.objects.create(owner=owner, name="hello", image="x", status=JobStatus.FAILED)
    client.force_login(outsider)
    assert client.post("/deployments/new/", {"again": earlier.pk}).status_code == 404
    assert client.post("/deployments/new/", {"again": "x"}).status_code == 404


def test_retry_without_hosts_says_why(owner_client, owner, queued):
    earlier = Deployment.objects.create(owner=owner, name="hello", image="x", status=JobStatus.FAILED)
    answer = owner_client.post("/deployments/new/", {"again": earlier.pk}, follow=True)
    assert f"The hosts of #{earlier.number} are gone." in answer.content.decode()
    assert Deployment.objects.count() == 1


def test_the_page_of_a_succeeded_release_marks_it_current_with_its_urls(owner_client, owner, hello, host):
    first = Deployment.objects.create(owner=owner, name="hello", image=hello.image_id, image_id=hello.image_id,
                                      status=JobStatus.SUCCEEDED)
    current = Deployment.objects.create(owner=owner, name="hello", image="hello:1", image_id=hello.image_id,
                                        status=JobStatus.SUCCEEDED)
    current.targets.create(host=host, host_name="h1", status=JobStatus.SUCCEEDED, url="http://10.0.0.1:8080/")
    page = owner_client.get(f"/deployments/{current.pk}/").content.decode()
    assert "No successful release yet" not in page
    assert "This is the release of <strong>hello</strong> that runs now" in page
    assert 'h1: <a href="http://10.0.0.1:8080/">' in page
    short = hello.image_id[7:19]
    releases = page[page.index('id="releases"'):]
    assert f"hello:1 · {short}" in releases and hello.image_id not in releases.split("</table>")[0].replace(
        f'title="{hello.image_id}"', "")
    assert releases.count('<span class="badge current">current</span>') == 1
    assert f'href="/deployments/{first.pk}/"' in releases
    assert f"Roll back to release #{first.number}" in page
    # The release asked for by id is named by the tag its image had in the later release.
    assert f'data-confirm="Roll back hello to release #{first.number} (hello:1 · {short})?"' in page
    assert f'href="/deployments/new/?from={current.pk}"' in page and 'id="retry"' not in page
    older = owner_client.get(f"/deployments/{first.pk}/").content.decode()
    assert f'runs now is <a href="/deployments/{current.pk}/">#{current.number}</a>' in older


def test_a_failure_on_four_hosts_is_said_once_and_can_be_retried(owner_client, owner):
    error = "The engine refused: port is already allocated"
    failed = Deployment.objects.create(
        owner=owner, name="hello", image="hello:1", status=JobStatus.FAILED,
        error="4 of 4 host(s) failed: " + "; ".join(f"h{n}: {error}" for n in range(4)))
    for number in range(4):
        failed.targets.create(host_name=f"h{number}", status=JobStatus.FAILED, error=error)
    page = owner_client.get(f"/deployments/{failed.pk}/").content.decode()
    assert page.count(error) == 1
    assert "(h0, h1, h2, h3)" in page
    assert 'name="again"' in page and f'value="{failed.pk}"' in page and 'id="retry"' in page
    assert "hello has no successful release yet." in page


def test_a_running_deployment_does_not_say_there_is_no_release(owner_client, owner):
    running = Deployment.objects.create(owner=owner, name="hello", image="hello:1", status=JobStatus.RUNNING)
    page = owner_client.get(f"/deployments/{running.pk}/").content.decode()
    assert "No successful release yet" not in page and "None yet: this deployment is the first." in page
    assert "js/fleet-deployment-final.js" in page and page.count("data-refresh") == 2


def test_the_api_redeploys(owner_api, owner, hello, host, queued, granted, django_capture_on_commit_callbacks):
    earlier = Deployment.objects.create(owner=owner, name="hello", image="hello:1", image_id=hello.image_id,
                                        status=JobStatus.FAILED)
    earlier.targets.create(host=host, host_name=host.name, status=JobStatus.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        answer = owner_api.post(f"/api/v1/deployments/{earlier.pk}/redeploy/")
    assert answer.status_code == 202
    again = Deployment.objects.get(pk=answer.json()["id"])
    assert again.pk != earlier.pk and again.image_id == hello.image_id and queued == [again.pk]


def test_the_api_redeploy_refuses_without_hosts_and_for_outsiders(owner_api, api_client, owner, outsider):
    earlier = Deployment.objects.create(owner=owner, name="hello", image="x", status=JobStatus.FAILED)
    answer = owner_api.post(f"/api/v1/deployments/{earlier.pk}/redeploy/")
    assert answer.status_code == 400 and answer.json()["detail"] == f"The hosts of #{earlier.number} are gone."
    api_client.force_authenticate(outsider)
    assert api_client.post(f"/api/v1/deployments/{earlier.pk}/redeploy/").status_code == 404


def test_releases_are_named_by_tag_and_short_id():
    image_id = "sha256:" + "3f2a9c1b7d4e" + "0" * 52
    assert deployments.release_label(Deployment(image="hello:1", image_id=image_id)) == "hello:1 · 3f2a9c1b7d4e"
    assert deployments.release_label(Deployment(image=image_id, image_id=image_id)) == "3f2a9c1b7d4e"
    assert deployments.release_label(Deployment(image="reg.example/app:2")) == "reg.example/app:2"


def test_the_form_says_where_to_add_a_host_when_there_is_none(owner_client, owner):
    assert 'id="no-hosts"' in owner_client.get("/deployments/new/").content.decode()
    Host.objects.create(owner=owner, name="h1", url="tcp://127.0.0.1:9")
    assert 'id="no-hosts"' not in owner_client.get("/deployments/new/").content.decode()


def test_a_release_asked_for_by_id_borrows_the_tag_of_its_image():
    image_id = "sha256:" + "3f2a9c1b7d4e" + "0" * 52
    tagged, rollback = Deployment(image="hello:1", image_id=image_id), Deployment(image=image_id, image_id=image_id)
    names = deployments.names_of([rollback, tagged])
    assert deployments.release_label(rollback, names) == "hello:1 · 3f2a9c1b7d4e"
