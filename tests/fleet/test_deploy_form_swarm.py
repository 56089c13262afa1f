"""/deployments/new/ to a swarm manager: the Swarm fieldset's settings reach create_deployment (the service the API
calls) as the `swarm` dict, each bad value is an error beside its input and creates nothing, and a plain host
refuses them. Runs go to the broker, recorded here; tests/fleet/test_swarm_timeline_browser.py fills the form in a
real browser against a real swarm."""

from __future__ import annotations

import re

import pytest

from fleet.models import Deployment, Host
from registry.constants import RegistryKind
from registry.models import RegistryAccount

IMAGE = "registry.example:5000/team/hello:1"
SWARM = {"id": "a" * 25, "managers": 1, "nodes": []}


@pytest.fixture
def manager(owner, monkeypatch):
    # The check of the manager each deployment to a swarm makes (tests/fleet/test_swarm_rollouts.py has a real one
    # that does not answer): it answers, still a manager.
    monkeypatch.setattr("fleet.services.deployments.check_host", lambda host: host)
    return Host.objects.create(owner=owner, name="swarm", url="tcp://127.0.0.1:2371", status="up", swarm=SWARM)


@pytest.fixture
def plain(owner):
    return Host.objects.create(owner=owner, name="plain", url="tcp://127.0.0.1:2372")


@pytest.fixture
def account(owner):
    return RegistryAccount.objects.create(owner=owner, name="team", kind=RegistryKind.GENERIC,
                                          url="http://registry.example:5000", username="u", secret="s")


def form(host, account, **overrides) -> dict:
    return {"image": IMAGE, "name": "hello", "hosts": [host.pk], "registry": account.pk if account else "",
            "restart_policy": "always", "port_container": ["8080/tcp"], "port_host": ["8080"],
            "env_key": ["WHO"], "env_value": ["you"], **overrides}


def field_errors(html: str, name: str) -> list[str]:
    """The errors the page shows beside input `name` (templates/form_field.html's block of that input)."""
    start = html.find(f'<div class="field has-error" id="field-{name}">')
    if start < 0:
        return []
    end = html.find('<div class="field', start + 1)
    block = html[start:end if end > 0 else None]
    errors = re.search(r'<ul class="errorlist">(.*?)</ul>', block, re.S)
    return re.findall(r"<li>(.*?)</li>", errors.group(1)) if errors else []


def test_the_form_has_the_swarm_fieldset_and_marks_managers(owner_client, manager, plain, account):
    page = owner_client.get("/deployments/new/").content.decode()
    assert 'id="swarm-settings"' in page and "for a swarm manager's host only" in page
    assert "swarm (swarm manager)" in page and f'value="{manager.pk}"' in page
    assert re.search(rf'value="{manager.pk}"[^>]*data-swarm="manager"|data-swarm="manager"[^>]*value="{manager.pk}"',
                     page)
    assert not re.search(rf'value="{plain.pk}"[^>]*data-swarm', page)
    for name in ("replicas", "update_order", "update_failure_action", "update_max_failure_ratio", "rollback_monitor",
                 "placement_constraints", "registry"):
        assert f'name="{name}"' in page
    # Folded until it is asked for (no setting given yet); fleet-deploy.js opens it for a manager.
    assert '<details class="field swarm-settings" id="swarm-settings">' in page
    assert "js/fleet-deploy.js" in page and "<script>" not in page


def test_valid_settings_make_the_swarm_deployment(owner_client, manager, account, queued,
                                                 django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        answer = owner_client.post("/deployments/new/", form(
            manager, account, mode="replicated", replicas="2",
            placement_constraints="node.labels.tier==web\r\n\r\n node.role!=manager ",
            placement_max_replicas_per_node="1", update_parallelism="1", update_delay="2s",
            update_order="start-first", update_failure_action="rollback", update_monitor="3",
            update_max_failure_ratio="0.25", rollback_parallelism="0", rollback_failure_action="continue",
            rollback_order="stop-first"))

    deployment = Deployment.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/deployments/{deployment.pk}/"
    assert deployment.swarm == {
        "mode": "replicated", "replicas": 2,
        "placement": {"constraints": ["node.labels.tier==web", "node.role!=manager"], "max_replicas_per_node": 1},
        "update": {"parallelism": 1, "delay": 2.0, "order": "start-first", "failure_action": "rollback",
                   "monitor": 3.0, "max_failure_ratio": 0.25},
        "rollback": {"parallelism": 0, "order": "stop-first", "failure_action": "continue"},
    }
    assert deployment.registry_account_id == account.pk and deployment.image == IMAGE
    assert (deployment.ports, deployment.env) == ({"8080/tcp": 8080}, {"WHO": "you"})
    assert [target.host for target in deployment.targets.all()] == [manager] and queued == [deployment.pk]


def test_blank_settings_are_swarms_defaults_and_global_mode(owner_client, manager, account, queued):
    owner_client.post("/deployments/new/", form(manager, account, mode="replicated"))
    assert Deployment.objects.get().swarm == {"mode": "replicated", "replicas": 1, "update": None, "rollback": None,
                                              "placement": {"constraints": [], "max_replicas_per_node": None}}
    Deployment.objects.all().delete()
    owner_client.post("/deployments/new/", form(manager, account, mode="global"))
    assert Deployment.objects.get().swarm["mode"] == "global"


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"registry": ""}, "registry", "A swarm pulls from a registry: choose a registry account."),
    ({"mode": "everywhere"}, "mode", "mode is one of replicated, global."),
    ({"mode": "global", "replicas": "2"}, "replicas",
     "A global service runs one task on every node: it takes no replicas."),
    ({"replicas": "-1"}, "replicas", "replicas is 0 to 1000."),
    ({"replicas": "1001"}, "replicas", "replicas is 0 to 1000."),
    ({"placement_constraints": "tier=web"}, "placement_constraints",
     "&#x27;tier=web&#x27; is no constraint: node.labels.KEY==VALUE, node.role!=manager, node.hostname==NAME..."),
    ({"placement_max_replicas_per_node": "0"}, "placement_max_replicas_per_node",
     "max_replicas_per_node is 1 to 1000."),
    ({"update_order": "sideways"}, "update_order", "order is one of stop-first, start-first."),
    ({"update_failure_action": "retry"}, "update_failure_action",
     "failure_action is one of rollback, pause, continue."),
    ({"rollback_failure_action": "rollback"}, "rollback_failure_action", "failure_action is one of pause, continue."),
    ({"update_delay": "soon"}, "update_delay", "delay is seconds, like 5 or 0.5."),
    ({"rollback_monitor": "7200"}, "rollback_monitor", "monitor is between 0 and 3600 seconds."),
    ({"update_parallelism": "-2"}, "update_parallelism", "parallelism is how many tasks at once: 0 (all) to 1000."),
    ({"update_max_failure_ratio": "2"}, "update_max_failure_ratio",
     "max_failure_ratio is a fraction of the tasks, between 0 and 1."),
    ({"name": "my_app"}, "name", "On a swarm the app&#x27;s name is the service&#x27;s"),
])
def test_each_bad_setting_is_an_error_beside_its_input_and_nothing_is_made(owner_client, manager, account, queued,
                                                                          overrides, field, message):
    answer = owner_client.post("/deployments/new/", form(manager, account, **overrides))
    html = answer.content.decode()

    assert answer.status_code == 200
    errors = field_errors(html, field)
    assert len(errors) == 1 and errors[0].startswith(message), (errors, html[html.find("errorlist") - 300:][:900])
    assert not Deployment.objects.exists() and queued == []
    # The form comes back with what was sent, and its Swarm settings open.
    assert 'id="swarm-settings" open' in html or overrides in ({"registry": ""}, {"name": "my_app"})


def test_a_plain_host_refuses_swarm_settings_and_takes_none_unasked(owner_client, plain, account, queued):
    answer = owner_client.post("/deployments/new/", form(plain, None, replicas="3", update_order="start-first"))
    assert field_errors(answer.content.decode(), "replicas") == [
        "replicas, update: only a deployment to a swarm manager takes these; none of the chosen hosts is one (as of "
        "its last check)."]
    assert not Deployment.objects.exists()
    # The fieldset's defaults (replicated, blanks) are no settings: a plain deployment as before.
    answer = owner_client.post("/deployments/new/", form(plain, None, image="busybox:1", mode="replicated",
                                                          registry=account.pk))
    deployment = Deployment.objects.get()
    assert answer.status_code == 302 and deployment.swarm is None and deployment.registry_account_id == account.pk


def test_a_registry_pull_takes_a_typed_reference(owner_client, owner, manager, account, queued):
    from builds.models import Image

    image = Image.objects.create(owner=owner, image_id="sha256:" + "b" * 64, tags=["hello:1"])
    answer = owner_client.post("/deployments/new/", form(manager, account, image="", picked=image.pk))
    assert field_errors(answer.content.decode(), "picked")[0].startswith("A pull from a registry takes the image")
    assert not Deployment.objects.exists()


def test_redeploy_starts_from_the_swarm_settings(owner_client, owner, manager, account, queued):
    swarm = {"mode": "replicated", "replicas": 3,
             "placement": {"constraints": ["node.role!=manager"], "max_replicas_per_node": 1},
             "update": {"order": "start-first", "delay": 1.5, "failure_action": "rollback"},
             "rollback": {"parallelism": 0}}
    earlier = Deployment.objects.create(owner=owner, name="hello", image=IMAGE, registry_account_id=account.pk,
                                        swarm=swarm, status="succeeded")
    earlier.targets.create(host=manager, host_name=manager.name)
    page = owner_client.get(f"/deployments/new/?from={earlier.pk}").content.decode()
    assert 'id="swarm-settings" open' in page
    assert re.search(r'name="replicas" value="3"', page) and 'value="1.5"' in page
    assert re.search(r'<option value="start-first" selected>', page)
    assert re.search(rf'<option value="{account.pk}" selected>', page)
    assert "node.role!=manager</textarea>" in page
