"""POST /api/v1/deployments/{id}/scale/ and /remove-service/, and the deployment page's Scale form and Remove
button, with the manager's engine replaced (tests/fleet/test_swarm_service_ops.py drives a real swarm): what a
scale records (a new release of the same digest and settings, another replica count), what is refused and why, and
that nothing is written when the engine refuses or does not answer."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console.audit.models import AuditEvent
from console.audit.words import summary
from console.constants import JobStatus
from console.engine import EngineUnavailable
from fleet.instance import console_mark
from fleet.models import Deployment, DeploymentTarget, Host
from registry.constants import RegistryKind
from registry.models import RegistryAccount

DIGEST = "sha256:" + "d" * 64
IMAGE = "registry.example:5000/team/hello"
NODES = [{"id": f"{index}" * 25, "hostname": "n", "role": "worker", "availability": "active", "state": "ready",
          "address": f"10.0.0.{index}", "engine_version": "20.10.24", "labels": {}, "leader": False}
         for index in (1, 2, 3)]
SWARM = {"id": "c" * 25, "managers": 1, "nodes": NODES}
SETTINGS = {"mode": "replicated", "replicas": 3, "placement": {"constraints": [], "max_replicas_per_node": None},
            "update": {"parallelism": 1, "order": "stop-first", "failure_action": "rollback"}, "rollback": None}
SERVICE_ID = "s" * 25


@pytest.fixture
def manager(owner) -> Host:
    return Host.objects.create(owner=owner, name="swarm", url="tcp://10.0.0.1:2375", status="up", swarm=SWARM)


@pytest.fixture
def account(owner):
    return RegistryAccount.objects.create(owner=owner, name="team", kind=RegistryKind.GENERIC,
                                          url="http://registry.example:5000", username="u", secret="s")


def release(owner, manager, account, swarm=SETTINGS, ports=None, status=JobStatus.SUCCEEDED) -> Deployment:
    deployment = Deployment.objects.create(
        owner=owner, name="hello", image=f"{IMAGE}:1", image_digest=f"{IMAGE}@{DIGEST}", registry_account_id=account.pk,
        ports=ports or {}, env={"WHO": "you"}, swarm=swarm, status=status)
    DeploymentTarget.objects.create(deployment=deployment, host=manager, host_name=manager.name, status=status,
                                    service={"id": SERVICE_ID, "replicas": 3, "running": 3, "update_state": "",
                                             "update_message": "", "update_started": "", "tasks": []})
    return deployment


@pytest.fixture
def current(owner, manager, account) -> Deployment:
    return release(owner, manager, account)


def service(owner_id, name="hello", mark=None) -> dict:
    return {"ID": SERVICE_ID, "Version": {"Index": 7}, "Spec": {
        "Name": f"{name}-u{owner_id}", "Mode": {"Replicated": {"Replicas": 3}},
        "Labels": {"console.instance": mark or console_mark(), "console.deployment.owner": str(owner_id),
                   "console.deployment.name": name},
        "TaskTemplate": {"ContainerSpec": {"Image": f"{IMAGE}:1@{DIGEST}"}}}}


@pytest.fixture
def manager_engine(monkeypatch, owner):
    """The manager's services: `found` is what find_service answers; removals are recorded."""
    state = {"found": service(owner.pk), "removed": [], "asked": [], "down": False}

    def find(engine, name):
        if state["down"]:
            raise EngineUnavailable("Looking for service: the engine does not answer")
        state["asked"].append(name)
        return state["found"]

    def remove(engine, service_id):
        state["removed"].append(service_id)

    monkeypatch.setattr("console.engine.swarm.find_service", find)
    monkeypatch.setattr("console.engine.swarm.remove_service", remove)
    # create_deployment checks a swarm's manager first (the host check): it answers, as of its record.
    monkeypatch.setattr("fleet.services.deployments.check_host", lambda host: host)
    return state


def scale(api, deployment, body) -> object:
    return api.post(f"/api/v1/deployments/{deployment.pk}/scale/", body, format="json")


def test_it_records_a_scale_as_a_new_release_of_the_same_digest_and_queues_it(
        owner_api, owner, current, manager_engine, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        answer = scale(owner_api, current, {"replicas": 6})

    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert body["scale_of"] == current.pk and body["rollback_of"] is None
    assert body["swarm"] == {**SETTINGS, "replicas": 6}
    assert (body["image"], body["image_digest"]) == (current.image, current.image_digest)
    assert body["env"] == {"WHO": "you"} and body["status"] == "queued"
    assert [target["host"] for target in body["targets"]] == [current.targets.get().host_id]
    assert queued == [body["id"]] and manager_engine["asked"] == [f"hello-u{owner.pk}"]
    (event,) = AuditEvent.objects.filter(action="scale")
    assert event.detail["replicas"] == 6 and event.detail["scale_of"] == current.pk
    assert summary(event).startswith(f"alice scaled hello #{body['number']} to 6 replica(s) on swarm")


@pytest.mark.parametrize("replicas", [-1, 101, "three", True, None, 2.5])
def test_a_replica_count_out_of_range_is_a_400(owner_api, current, manager_engine, queued, replicas):
    answer = scale(owner_api, current, {"replicas": replicas})

    assert answer.status_code == 400, answer.json()
    assert "replicas" in answer.json()
    assert Deployment.objects.count() == 1 and queued == []


def test_the_count_is_said_with_its_range(owner_api, current, manager_engine, queued):
    answer = scale(owner_api, current, {"replicas": 101})
    assert answer.json() == {"replicas": ["replicas is a whole number from 0 to 100."]}


def test_a_deployment_to_hosts_does_not_scale(owner_api, owner, account, manager_engine, queued):
    plain = Host.objects.create(owner=owner, name="plain", url="tcp://10.0.0.9:2375")
    deployment = Deployment.objects.create(owner=owner, name="web", image="hello:1", status=JobStatus.SUCCEEDED)
    DeploymentTarget.objects.create(deployment=deployment, host=plain, host_name="plain")

    answer = scale(owner_api, deployment, {"replicas": 2})

    assert answer.status_code == 400
    assert answer.json() == {"detail": f"#{deployment.display_number} of web went to hosts, not to a swarm: only a "
                                       "swarm service can scale."}
    assert manager_engine["asked"] == [] and queued == []


def test_a_global_service_does_not_scale(owner_api, owner, manager, account, manager_engine, queued):
    deployment = release(owner, manager, account, swarm={**SETTINGS, "mode": "global", "replicas": None})

    answer = scale(owner_api, deployment, {"replicas": 2})

    assert answer.status_code == 400
    assert "global service" in answer.json()["detail"]
    assert queued == []


def test_only_the_current_release_scales(owner_api, owner, manager, account, current, manager_engine, queued):
    newer = release(owner, manager, account)

    answer = scale(owner_api, current, {"replicas": 2})

    assert answer.status_code == 409
    assert answer.json() == {"detail": f"#{current.display_number} is not the current release of hello "
                                       f"(#{newer.display_number} is): scale the release that runs."}
    failed = release(owner, manager, account, status=JobStatus.FAILED)
    assert scale(owner_api, failed, {"replicas": 2}).status_code == 409
    assert manager_engine["asked"] == [] and queued == []


def test_published_ports_bound_the_count_by_the_available_nodes(owner_api, owner, manager, account, manager_engine,
                                                                queued):
    deployment = release(owner, manager, account, ports={"8080/tcp": 8686})

    answer = scale(owner_api, deployment, {"replicas": 4})

    assert answer.status_code == 400
    assert answer.json() == {"replicas": ["4 replicas do not fit: each node publishes port 8686 once (host mode), "
                                          "and swarm has 3 available node(s) as of its last check; at most 3."]}
    assert scale(owner_api, deployment, {"replicas": 3}).status_code == 202


def test_a_service_the_swarm_no_longer_has_or_that_is_not_ours_is_a_409(owner_api, owner, current, manager_engine,
                                                                        queued):
    manager_engine["found"] = None
    missing = scale(owner_api, current, {"replicas": 2})
    manager_engine["found"] = service(owner.pk, mark="another-console")
    foreign = scale(owner_api, current, {"replicas": 2})

    assert (missing.status_code, foreign.status_code) == (409, 409)
    assert missing.json() == {"detail": f"The swarm no longer has the service hello-u{owner.pk} this console deployed "
                                        "for hello (removed outside the console?): deploy the app again."}
    assert Deployment.objects.count() == 1 and queued == []


def test_a_manager_that_does_not_answer_is_a_503_and_nothing_is_recorded(owner_api, current, manager_engine, queued):
    manager_engine["down"] = True

    answer = scale(owner_api, current, {"replicas": 2})

    assert answer.status_code == 503
    assert "does not answer" in answer.json()["detail"]
    assert Deployment.objects.count() == 1 and not AuditEvent.objects.filter(action="scale").exists()


def test_an_app_being_deployed_does_not_scale(owner_api, owner, manager, account, current, manager_engine, queued):
    release(owner, manager, account, status=JobStatus.RUNNING)

    answer = scale(owner_api, current, {"replicas": 2})

    assert answer.status_code == 409
    assert "is being deployed right now" in answer.json()["detail"]


def test_outsiders_get_404_and_get_is_not_allowed(api_client, outsider, owner_api, current, manager_engine, queued):
    api_client.force_authenticate(outsider)
    assert scale(api_client, current, {"replicas": 2}).status_code == 404
    assert api_client.post(f"/api/v1/deployments/{current.pk}/remove-service/").status_code == 404
    assert owner_api.get(f"/api/v1/deployments/{current.pk}/scale/").status_code == 405
    assert owner_api.get(f"/api/v1/deployments/{current.pk}/remove-service/").status_code == 405
    assert manager_engine["asked"] == [] and manager_engine["removed"] == [] and queued == []


def test_it_removes_the_service_and_the_target_says_so(owner_api, owner, current, manager_engine):
    answer = owner_api.post(f"/api/v1/deployments/{current.pk}/remove-service/")

    assert answer.status_code == 200, answer.json()
    assert manager_engine["removed"] == [SERVICE_ID]
    (target,) = answer.json()["targets"]
    assert target["service"]["removed"] is True and target["service"]["removed_at"] and target["url"] == ""
    (event,) = AuditEvent.objects.filter(action="service_removed")
    assert summary(event).startswith(f"alice removed the swarm service of hello #{current.display_number}")
    assert event.detail == {"name": "hello", "hosts": ["swarm"], "service": f"hello-u{owner.pk}", "number": 1,
                            "service_id": SERVICE_ID}
    # A removed service is not scaled: there is nothing to scale.
    refused = scale(owner_api, current, {"replicas": 2})
    assert refused.status_code == 409
    assert refused.json() == {"detail": "The service of hello was removed: deploy the app again to run it."}


def test_a_service_not_ours_or_missing_is_not_removed_and_nothing_is_recorded(owner_api, owner, current,
                                                                               manager_engine):
    manager_engine["found"] = service(owner.pk, mark="another-console")
    foreign = owner_api.post(f"/api/v1/deployments/{current.pk}/remove-service/")
    manager_engine["found"] = None
    missing = owner_api.post(f"/api/v1/deployments/{current.pk}/remove-service/")

    assert (foreign.status_code, missing.status_code) == (409, 409)
    assert foreign.json() == {"detail": f"The swarm's service hello-u{owner.pk} was not deployed by this console as "
                                        "your app hello: it is left alone."}
    assert missing.json() == {"detail": f"The swarm has no service hello-u{owner.pk}: nothing to remove."}
    assert manager_engine["removed"] == [] and not AuditEvent.objects.filter(action="service_removed").exists()
    assert "removed" not in current.targets.get().service


def test_a_removal_when_the_manager_does_not_answer_is_a_503_with_nothing_written(owner_api, current, manager_engine):
    manager_engine["down"] = True

    answer = owner_api.post(f"/api/v1/deployments/{current.pk}/remove-service/")

    assert answer.status_code == 503
    assert manager_engine["removed"] == [] and not AuditEvent.objects.filter(action="service_removed").exists()
    assert "removed" not in current.targets.get().service


def test_a_deployment_to_hosts_has_no_service_to_remove(owner_api, owner, manager_engine):
    deployment = Deployment.objects.create(owner=owner, name="web", image="hello:1", status=JobStatus.SUCCEEDED)

    answer = owner_api.post(f"/api/v1/deployments/{deployment.pk}/remove-service/")

    assert answer.status_code == 400 and "not to a swarm" in answer.json()["detail"]


# -- the deployment page ----------------------------------------------------------------------------------------

def test_the_current_release_page_has_the_scale_form_and_the_confirmed_removal(owner_client, owner, manager, account,
                                                                                current, manager_engine):
    page = owner_client.get(reverse("fleet:deployment-detail", args=[current.pk])).content.decode()

    assert 'id="scale-form"' in page and 'name="replicas"' in page and 'value="3"' in page
    assert f'data-confirm="Remove the service hello-u{owner.pk} from swarm? Its tasks stop on every node."' in page
    older = release(owner, manager, account)
    page = owner_client.get(reverse("fleet:deployment-detail", args=[current.pk])).content.decode()
    assert 'id="scale-form"' not in page and 'id="service-actions"' not in page
    assert 'id="scale-form"' in owner_client.get(reverse("fleet:deployment-detail", args=[older.pk])).content.decode()


def test_the_scale_form_opens_the_new_release_or_says_why_not(owner_client, current, manager_engine, queued):
    answer = owner_client.post(reverse("fleet:deployment-scale", args=[current.pk]), {"replicas": "5"})

    scaled = Deployment.objects.get(scale_of=current)
    assert answer.status_code == 302 and answer.url == reverse("fleet:deployment-detail", args=[scaled.pk])
    assert scaled.swarm["replicas"] == 5
    page = owner_client.get(answer.url).content.decode()
    assert f"Scaling hello to 5 replica(s) (as #{scaled.display_number})." in page

    Deployment.objects.filter(pk=scaled.pk).update(status=JobStatus.SUCCEEDED)
    refused = owner_client.post(reverse("fleet:deployment-scale", args=[scaled.pk]), {"replicas": "500"})
    assert refused.status_code == 302 and refused.url == reverse("fleet:deployment-detail", args=[scaled.pk])
    page = owner_client.get(refused.url).content.decode()
    assert "Not scaled: replicas is a whole number from 0 to 100." in page
    assert Deployment.objects.count() == 2


def test_the_remove_button_removes_and_the_page_says_so(owner_client, current, manager_engine):
    answer = owner_client.post(reverse("fleet:deployment-remove-service", args=[current.pk]))

    assert answer.status_code == 302 and manager_engine["removed"] == [SERVICE_ID]
    page = owner_client.get(answer.url).content.decode()
    assert "The service of hello was removed; its tasks stop on every node." in page
    assert 'id="service-removed"' in page and 'id="scale-form"' not in page

    manager_engine["down"] = True
    again = owner_client.post(reverse("fleet:deployment-remove-service", args=[current.pk]))
    assert "Not removed: Looking for service: the engine does not answer" in owner_client.get(
        again.url).content.decode()


def test_outsiders_get_404_from_the_page_buttons(client, outsider, current, manager_engine, queued):
    client.force_login(outsider)
    assert client.post(reverse("fleet:deployment-scale", args=[current.pk]), {"replicas": "2"}).status_code == 404
    assert client.post(reverse("fleet:deployment-remove-service", args=[current.pk])).status_code == 404
    assert client.get(reverse("fleet:deployment-scale", args=[current.pk])).status_code == 405
    assert manager_engine["asked"] == [] and queued == []
