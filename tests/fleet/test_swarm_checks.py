"""What the console does about a swarm's state between and during deployments, with the engine replaced
(tests/fleet/test_swarm_rollouts.py does the same against a real swarm): a deployment to a manager checks it first
and refuses, recording nothing, when it does not answer; the host check reads again the service of each app's
latest release; following a rollout waits out a short silence of the manager and ends a long one, failed and
saying so; a service's tasks restart unless said otherwise."""

from __future__ import annotations

import pytest

from console.constants import JobStatus
from console.engine import EngineNotFound, EngineUnavailable
from fleet.constants import HostStatus
from fleet.models import Deployment, DeploymentTarget, Host
from fleet.services import hosts as host_services
from fleet.services import swarm_deployer
from fleet.services.targets import TargetFailed
from registry.constants import RegistryKind
from registry.models import RegistryAccount

SWARM = {"id": "a" * 25, "managers": 1, "nodes": []}
SERVICE = "s" * 25


@pytest.fixture
def manager(owner):
    return Host.objects.create(owner=owner, name="swarm", url="tcp://10.0.0.1:2375", status="up", swarm=SWARM)


@pytest.fixture
def account(owner):
    return RegistryAccount.objects.create(owner=owner, name="team", kind=RegistryKind.GENERIC,
                                          url="http://registry.example:5000", username="u", secret="s")


def request(manager, account, **overrides):
    return {"image": "registry.example:5000/team/hello:1", "name": "hello", "hosts": [manager.pk],
            "registry": account.pk, **overrides}


def answering(monkeypatch, status=HostStatus.UP, reason=""):
    checked = []

    def check(host):
        checked.append(host.pk)
        host.status, host.status_reason = status, reason
        return host

    monkeypatch.setattr("fleet.services.deployments.check_host", check)
    return checked


def test_a_deployment_to_a_manager_that_does_not_answer_is_a_503_and_records_nothing(
    owner_api, manager, account, queued, monkeypatch
):
    checked = answering(monkeypatch, HostStatus.DOWN, "Reading the engine: the Docker Engine at tcp://10.0.0.1:2375 "
                                                      "did not answer in time")

    answer = owner_api.post("/api/v1/deployments/", request(manager, account, replicas=2), format="json")

    assert answer.status_code == 503, answer.content
    assert answer.json() == {"detail": "The swarm manager swarm does not answer, so nothing was deployed: Reading "
                                       "the engine: the Docker Engine at tcp://10.0.0.1:2375 did not answer in time"}
    assert checked == [manager.pk]
    assert not Deployment.objects.exists() and queued == []


def test_a_deployment_to_plain_hosts_checks_nothing_first(owner_api, owner, account, queued, monkeypatch):
    checked = answering(monkeypatch)
    plain = Host.objects.create(owner=owner, name="plain", url="tcp://10.0.0.2:2375")

    answer = owner_api.post("/api/v1/deployments/", request(plain, account), format="json")

    assert answer.status_code == 202 and checked == []
    assert answer.json()["restart_policy"] == "no"


@pytest.mark.parametrize(("asked", "recorded"), [(None, "always"), ("no", "no"), ("on-failure", "on-failure")])
def test_a_services_tasks_restart_unless_said(owner_api, manager, account, queued, monkeypatch, asked, recorded):
    answering(monkeypatch)
    body = request(manager, account) if asked is None else request(manager, account, restart_policy=asked)

    answer = owner_api.post("/api/v1/deployments/", body, format="json")

    assert answer.status_code == 202, answer.json()
    assert Deployment.objects.get().restart_policy == recorded


# -- the host check reads the services again ---------------------------------------------------------------

def released(owner, host, name, status=JobStatus.SUCCEEDED, service=SERVICE, swarm=True):
    deployment = Deployment.objects.create(owner=owner, name=name, image="r/x:1", status=status,
                                           swarm={"mode": "replicated", "replicas": 1} if swarm else None)
    return DeploymentTarget.objects.create(deployment=deployment, host=host, host_name=host.name,
                                           status=status, service={"id": service, "tasks": [], "running": 0}
                                           if service else None)


def test_the_host_check_reads_the_service_of_each_apps_latest_release(owner, manager, monkeypatch):
    older = released(owner, manager, "web", service="o" * 25)
    latest = released(owner, manager, "web")
    failed = released(owner, manager, "web", status=JobStatus.FAILED, service="f" * 25)
    gone = released(owner, manager, "api", service="g" * 25)
    plain = released(owner, manager, "box", service=None, swarm=False)
    asked = []

    def state(engine, service_id):
        asked.append(service_id)
        if service_id == "g" * 25:
            raise EngineNotFound("Reading service: no such service")
        return {"id": service_id, "running": 3, "tasks": [{"node": "10.0.0.3", "state": "running"}]}

    monkeypatch.setattr(host_services, "service_state", state)

    host_services._record_services(manager, engine=None)

    assert sorted(asked) == sorted([SERVICE, "g" * 25])
    latest.refresh_from_db()
    assert {key: value for key, value in latest.service.items() if key != "read_at"} == {
        "id": SERVICE, "running": 3, "tasks": [{"node": "10.0.0.3", "state": "running",
                                                "history": [{"state": "running", "since": ""}]}]}
    assert latest.service["read_at"]
    gone.refresh_from_db()
    assert gone.service["removed"] is True and gone.service["id"] == "g" * 25
    for untouched in (older, failed):
        before = untouched.service
        untouched.refresh_from_db()
        assert untouched.service == before
    plain.refresh_from_db()
    assert plain.service is None


def test_a_service_that_cannot_be_read_keeps_its_last_reading(owner, manager, monkeypatch):
    latest = released(owner, manager, "web")

    def state(engine, service_id):
        raise EngineUnavailable("Reading service: the Docker Engine did not answer in time")

    monkeypatch.setattr(host_services, "service_state", state)

    host_services._record_services(manager, engine=None)

    latest.refresh_from_db()
    assert latest.service == {"id": SERVICE, "tasks": [], "running": 0}


# -- following a rollout while the manager is silent -------------------------------------------------------

class FakeHost:
    name = "swarm"
    url = "tcp://10.0.0.1:2375"


class FakeTarget:
    host = FakeHost()


def test_a_short_silence_is_waited_out(monkeypatch):
    monkeypatch.setattr(swarm_deployer, "SWARM_SILENCE_SECONDS", 5)
    monkeypatch.setattr(swarm_deployer, "SWARM_POLL_SECONDS", 0)
    answers = [EngineUnavailable("Reading service: did not answer in time"), {"id": SERVICE}]

    def state(engine, service_id):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(swarm_deployer.engine_swarm, "service_state", state)
    said = []
    silence = swarm_deployer._Silence(FakeTarget(), said.append)

    assert silence.read(None, SERVICE) is None
    assert silence.read(None, SERVICE) == {"id": SERVICE}
    assert said[0].startswith("the manager does not answer (Reading service: did not answer in time); trying "
                              "again for 5 s")
    assert said[1].startswith("the manager answers again after ")


def test_a_long_silence_fails_the_target_saying_so(monkeypatch):
    monkeypatch.setattr(swarm_deployer, "SWARM_SILENCE_SECONDS", 0.05)
    monkeypatch.setattr(swarm_deployer, "SWARM_POLL_SECONDS", 0.01)

    def state(engine, service_id):
        raise EngineUnavailable("Reading service: the Docker Engine at tcp://10.0.0.1:2375 did not answer in time")

    monkeypatch.setattr(swarm_deployer.engine_swarm, "service_state", state)
    silence = swarm_deployer._Silence(FakeTarget(), lambda line: None)

    with pytest.raises(swarm_deployer.ManagerSilent) as failure:
        while silence.read(None, SERVICE) is None:
            pass

    assert isinstance(failure.value, TargetFailed)
    assert str(failure.value).startswith("the manager swarm (tcp://10.0.0.1:2375) does not answer: nothing from it "
                                         "for 0 seconds (Reading service: the Docker Engine at tcp://10.0.0.1:2375 "
                                         "did not answer in time). Swarm goes on with the rollout (or back) by itself")


def test_a_service_removed_meanwhile_is_no_silence(monkeypatch):
    def state(engine, service_id):
        raise EngineNotFound("Reading service: no such service")

    monkeypatch.setattr(swarm_deployer.engine_swarm, "service_state", state)

    with pytest.raises(EngineNotFound):
        swarm_deployer._Silence(FakeTarget(), lambda line: None).read(None, SERVICE)


# -- when an update is done --------------------------------------------------------------------------------

NEW, OLD = "sha256:" + "1" * 64, "sha256:" + "0" * 64


def reading(update_state, *digests, started="2026-12-02T17:00:00Z"):
    return {"id": SERVICE, "replicas": len(digests), "running": len(digests), "update_state": update_state,
            "update_message": "", "update_started": started,
            "tasks": [{"id": f"t{n}", "node": "10.0.0.3", "state": "running", "desired_state": "running",
                       "error": "", "image_digest": digest} for n, digest in enumerate(digests)]}


def test_an_update_is_done_once_every_task_ran_the_new_digest_for_the_monitor_window(owner, manager, monkeypatch):
    deployment = Deployment.objects.create(owner=owner, name="web", image="r/x:2", swarm={
        "mode": "replicated", "replicas": 2, "update": {"parallelism": 2, "delay": 1, "monitor": 0.2}})
    target = DeploymentTarget.objects.create(deployment=deployment, host=manager, host_name=manager.name)
    readings = [reading("updating", OLD, OLD), reading("updating", NEW, NEW), reading("updating", NEW, OLD),
                reading("updating", NEW, NEW)]
    times = []

    def state(engine, service_id):
        times.append(swarm_deployer.time.monotonic())
        return readings.pop(0) if len(readings) > 1 else readings[0]

    monkeypatch.setattr(swarm_deployer.engine_swarm, "service_state", state)
    monkeypatch.setattr(swarm_deployer, "SWARM_POLL_SECONDS", 0.01)
    said = []

    done = swarm_deployer._follow_rollout(None, deployment, target, SERVICE, NEW, "2026-12-02T16:00:00Z",
                                          said.append)

    # Swarm still says updating (it sleeps its delay after the last batch): the console says why it is done.
    assert done["update_state"] == "updating"
    assert said[-1] == ("every task ran the new release for the monitor window (0.2 s): the update is done (Swarm "
                        "says completed after its delay)")
    # The window counts from the last reading that was not converged (the third), not from the first converged one.
    assert times[-1] - times[3] >= 0.2


def test_an_update_swarm_calls_completed_is_done_at_once(owner, manager, monkeypatch):
    deployment = Deployment.objects.create(owner=owner, name="web", image="r/x:2", swarm={
        "mode": "replicated", "replicas": 1, "update": {"monitor": 3600}})
    target = DeploymentTarget.objects.create(deployment=deployment, host=manager, host_name=manager.name)
    monkeypatch.setattr(swarm_deployer.engine_swarm, "service_state", lambda engine, service_id: reading(
        "completed", NEW))

    done = swarm_deployer._follow_rollout(None, deployment, target, SERVICE, NEW, "2026-12-02T16:00:00Z",
                                          lambda line: None)

    assert done["update_state"] == "completed"
