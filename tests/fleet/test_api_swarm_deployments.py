"""/api/v1/deployments/ to a swarm manager's host: the service settings it takes (replicas or global mode,
placement, update and rollback), what it refuses and why, and that they are only for a swarm. Runs go to the
broker, recorded here; tests/fleet/test_deploy_swarm.py deploys to a real swarm."""

from __future__ import annotations

import pytest

from fleet.models import Deployment, Host
from registry.constants import RegistryKind
from registry.models import RegistryAccount

IMAGE = "registry.example:5000/team/hello:1"
SWARM = {"id": "a" * 25, "managers": 1, "nodes": []}


@pytest.fixture
def manager(owner, monkeypatch):
    # The check of the manager each deployment to a swarm starts with (tests/fleet/test_swarm_rollouts.py has a
    # real one that does not answer): it answers, still a manager.
    monkeypatch.setattr("fleet.services.deployments.check_host", lambda host: host)
    return Host.objects.create(owner=owner, name="swarm", url="tcp://127.0.0.1:2371", status="up", swarm=SWARM)


@pytest.fixture
def plain(owner):
    return Host.objects.create(owner=owner, name="plain", url="tcp://127.0.0.1:2372")


@pytest.fixture
def account(owner):
    return RegistryAccount.objects.create(owner=owner, name="team", kind=RegistryKind.GENERIC,
                                          url="http://registry.example:5000", username="u", secret="s")


def request(manager, account, **overrides):
    return {"image": IMAGE, "name": "hello", "hosts": [manager.pk], "registry": account.pk,
            "ports": {"8080/tcp": 8080}, "env": {"WHO": "you"}, **overrides}


def test_it_takes_the_services_settings(owner_api, manager, account, queued, django_capture_on_commit_callbacks):
    settings = {"replicas": 3, "placement": {"constraints": ["node.labels.tier==web", "node.role != manager"],
                                             "max_replicas_per_node": 1},
                "update": {"parallelism": 2, "delay": "5s", "order": "start-first", "failure_action": "rollback",
                           "monitor": 10, "max_failure_ratio": 0.5},
                "rollback": {"parallelism": 0, "failure_action": "continue"}}
    with django_capture_on_commit_callbacks(execute=True):
        answer = owner_api.post("/api/v1/deployments/", request(manager, account, **settings), format="json")

    assert answer.status_code == 202, answer.json()
    expected = {"mode": "replicated", "replicas": 3,
                "placement": {"constraints": ["node.labels.tier==web", "node.role != manager"],
                              "max_replicas_per_node": 1},
                "update": {"parallelism": 2, "delay": 5.0, "order": "start-first", "failure_action": "rollback",
                           "monitor": 10.0, "max_failure_ratio": 0.5},
                "rollback": {"parallelism": 0, "failure_action": "continue"}}
    assert answer.json()["swarm"] == expected and answer.json()["targets"][0]["service"] is None
    assert Deployment.objects.get().swarm == expected
    assert queued == [answer.json()["id"]]


def test_a_global_service_and_the_defaults(owner_api, manager, account, queued):
    answer = owner_api.post("/api/v1/deployments/", request(manager, account, mode="global"), format="json")
    assert answer.status_code == 202, answer.json()
    assert answer.json()["swarm"] == {"mode": "global", "replicas": None, "update": None, "rollback": None,
                                      "placement": {"constraints": [], "max_replicas_per_node": None}}
    Deployment.objects.all().delete()
    answer = owner_api.post("/api/v1/deployments/", request(manager, account), format="json")
    assert answer.status_code == 202 and answer.json()["swarm"]["replicas"] == 1


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"registry": None}, "registry", "A swarm pulls from a registry: choose a registry account."),
    ({"name": "my_app"}, "name", "On a swarm the app's name is the service's: letters, digits and - (not first "
                                 "or last), at most LONGEST."),
    ({"mode": "everywhere"}, "mode", '"everywhere" is not a valid choice.'),
    ({"mode": "global", "replicas": 2}, "replicas",
     "A global service runs one task on every node: it takes no replicas."),
    ({"replicas": -1}, "replicas", "replicas is 0 to 1000."),
    ({"replicas": "three"}, "replicas", "replicas is 0 to 1000."),
    ({"placement": ["tier=web"]}, "placement",
     "'tier=web' is no constraint: node.labels.KEY==VALUE, node.role!=manager, node.hostname==NAME..."),
    ({"placement": {"zones": []}}, "placement",
     'placement is a list of constraints like ["node.labels.tier==web"], or {"constraints": [...], '
     '"max_replicas_per_node": 1}.'),
    ({"placement": {"max_replicas_per_node": 0}}, "placement", "max_replicas_per_node is 1 to 1000."),
    ({"update": {"order": "sideways"}}, "update", "order is one of stop-first, start-first."),
    ({"update": {"failure_action": "retry"}}, "update", "failure_action is one of rollback, pause, continue."),
    ({"rollback": {"failure_action": "rollback"}}, "rollback", "failure_action is one of pause, continue."),
    ({"update": {"delay": "soon"}}, "update", "delay is seconds, like 5 or 0.5."),
    ({"update": {"monitor": 7200}}, "update", "monitor is between 0 and 3600 seconds."),
    ({"update": {"parallelism": 1.5}}, "update", "parallelism is how many tasks at once: 0 (all) to 1000."),
    ({"update": {"max_failure_ratio": 2}}, "update",
     "max_failure_ratio is a fraction of the tasks, between 0 and 1."),
    ({"update": {"speed": 1}}, "update",
     "update takes parallelism, delay, order, failure_action, monitor, max_failure_ratio; not speed."),
    ({"update": "fast"}, "update", 'update is an object like {"parallelism": 1, "delay": 5, "order": '
                                   '"start-first", "failure_action": "rollback"}.'),
])
def test_it_refuses_bad_swarm_settings_with_a_message(owner_api, owner, manager, account, queued, overrides, field,
                                                     message):
    # The service is `<app>-u<owner id>`: what is left of Swarm's 63 characters depends on the id.
    message = message.replace("LONGEST", str(63 - len(f"-u{owner.pk}")))
    answer = owner_api.post("/api/v1/deployments/", request(manager, account, **overrides), format="json")
    assert answer.status_code == 400, answer.json()
    assert answer.json() == {field: [message]}
    assert not Deployment.objects.exists() and queued == []


def test_a_swarm_goes_alone_and_plain_hosts_take_no_swarm_settings(owner_api, manager, plain, account, queued):
    both = owner_api.post("/api/v1/deployments/", request(manager, account, hosts=[manager.pk, plain.pk]),
                          format="json")
    assert both.status_code == 400
    assert both.json() == {"hosts": ["swarm is a swarm: a deployment to a swarm goes to its manager alone, and "
                                     "Swarm places the tasks on its nodes."]}
    to_plain = owner_api.post("/api/v1/deployments/", request(plain, account, replicas=3, update={"delay": 1}),
                              format="json")
    assert to_plain.status_code == 400
    assert to_plain.json() == {"replicas": ["replicas, update: only a deployment to a swarm manager takes these; "
                                            "none of the chosen hosts is one (as of its last check)."]}
    assert not Deployment.objects.exists() and queued == []
