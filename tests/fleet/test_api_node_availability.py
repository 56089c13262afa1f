"""POST /api/v1/hosts/{id}/swarm/nodes/{node_id}/availability/ and the host page's Drain/Activate buttons, with the
engine replaced (tests/fleet/test_engine_swarm.py drives a real swarm): who may, what input is refused, what is
written when the engine refuses or does not answer (nothing)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console.audit.models import AuditEvent
from console.engine import EngineNotFound
from console.engine.swarm import node_record
from fleet.models import Host

NODE = "a" * 12 + "0123456789abc"
SWARM = {"id": "c" * 25, "managers": 1, "nodes": [
    {"id": NODE, "hostname": "n1", "role": "worker", "availability": "active", "state": "ready",
     "address": "10.0.0.2", "engine_version": "20.10.24", "labels": {"zone": "a", "items": "x"}, "leader": False},
]}


@pytest.fixture
def manager(owner) -> Host:
    return Host.objects.create(owner=owner, name="swarm", url="tcp://10.0.0.1:2375", status="up", swarm=SWARM)


@pytest.fixture
def fake_engine(monkeypatch):
    """The engine's update, recorded; the check after it, recorded."""
    calls = {"update": [], "check": []}

    def update(engine, node_id, availability):
        calls["update"].append((node_id, availability))
        return {**SWARM["nodes"][0], "availability": availability}

    monkeypatch.setattr("fleet.services.swarm.engine_set_node_availability", update)
    monkeypatch.setattr("fleet.services.swarm.check_host", lambda host: calls["check"].append(host.pk))
    return calls


def url(host: Host, node_id: str = NODE) -> str:
    return f"/api/v1/hosts/{host.pk}/swarm/nodes/{node_id}/availability/"


def test_it_drains_a_node_checks_the_host_and_records_it(owner_api, manager, fake_engine):
    answer = owner_api.post(url(manager), {"availability": "drain"}, format="json")

    assert answer.status_code == 200, answer.json()
    assert answer.json()["availability"] == "drain" and answer.json()["id"] == NODE
    assert fake_engine == {"update": [(NODE, "drain")], "check": [manager.pk]}
    (event,) = AuditEvent.objects.filter(action="node_availability_set")
    assert event.detail == {"node": NODE, "hostname": "n1", "availability": "drain"}


@pytest.mark.parametrize("node_id", ["abc", "A" * 25, "a" * 26, "n1", "a" * 24 + "-", "%2e%2e"])
def test_a_malformed_node_id_is_a_400(owner_api, manager, fake_engine, node_id):
    answer = owner_api.post(url(manager, node_id), {"availability": "drain"}, format="json")

    assert answer.status_code == 400, answer.content
    assert "node id" in str(answer.json())
    assert fake_engine["update"] == []


@pytest.mark.parametrize("value", ["", "DRAIN", "off", None])
def test_an_unknown_availability_is_a_400(owner_api, manager, fake_engine, value):
    answer = owner_api.post(url(manager), {"availability": value}, format="json")

    assert answer.status_code == 400
    assert "availability" in answer.json()
    assert fake_engine["update"] == []


def test_outsiders_get_404_and_nothing_happens(api_client, outsider, manager, fake_engine):
    api_client.force_authenticate(outsider)

    assert api_client.post(url(manager), {"availability": "drain"}, format="json").status_code == 404
    assert fake_engine["update"] == [] and not AuditEvent.objects.filter(action="node_availability_set").exists()


def test_get_is_not_allowed(owner_api, manager):
    assert owner_api.get(url(manager)).status_code == 405


def test_a_host_that_is_no_manager_is_a_409(owner_api, owner, fake_engine):
    plain = Host.objects.create(owner=owner, name="plain", url="tcp://10.0.0.1:2375", status="up",
                                swarm_reason="The engine is not in swarm mode.")

    answer = owner_api.post(url(plain), {"availability": "drain"}, format="json")

    assert answer.status_code == 409
    assert "not a swarm manager" in answer.json()["detail"] and "not in swarm mode" in answer.json()["detail"]
    assert fake_engine["update"] == []


def test_a_node_the_swarm_does_not_have_is_a_404_with_nothing_recorded(owner_api, manager, monkeypatch):
    def missing(engine, node_id, availability):
        raise EngineNotFound(f"Setting node {node_id} to drain: the swarm has no node {node_id}")

    monkeypatch.setattr("fleet.services.swarm.engine_set_node_availability", missing)

    answer = owner_api.post(url(manager), {"availability": "drain"}, format="json")

    assert answer.status_code == 404
    assert "has no node" in answer.json()["detail"]
    assert not AuditEvent.objects.filter(action="node_availability_set").exists()
    assert Host.objects.get(pk=manager.pk).swarm == SWARM


def test_an_engine_that_does_not_answer_is_a_503_with_nothing_written(staff_api, staff):
    # A socket nobody listens on (staff may register unix sockets): the engine wrapper's own refusal.
    host = Host.objects.create(owner=staff, name="gone", url="unix:///nonexistent/docker.sock", status="up",
                               swarm=SWARM)

    answer = staff_api.post(url(host), {"availability": "drain"}, format="json")

    assert answer.status_code == 503, answer.json()
    assert "does not answer" in answer.json()["detail"]
    host.refresh_from_db()
    assert host.swarm == SWARM and host.status == "up"
    assert not AuditEvent.objects.filter(action="node_availability_set").exists()


def test_the_host_api_shows_the_recorded_swarm(owner_api, manager, owner):
    body = owner_api.get(f"/api/v1/hosts/{manager.pk}/").json()
    assert body["swarm"] == SWARM and body["swarm_reason"] == ""

    plain = Host.objects.create(owner=owner, name="plain", url="tcp://10.0.0.3:2375")
    assert owner_api.get(f"/api/v1/hosts/{plain.pk}/").json()["swarm"] is None


def test_swarm_is_read_only_in_the_api(owner_api, manager):
    answer = owner_api.patch(f"/api/v1/hosts/{manager.pk}/", {"swarm": None, "swarm_reason": "x"}, format="json")

    assert answer.status_code == 200
    manager.refresh_from_db()
    assert manager.swarm == SWARM and manager.swarm_reason == ""


# -- the host page ---------------------------------------------------------------------------------------------

def test_the_host_page_lists_the_nodes_with_a_confirmed_drain(owner_client, manager, monkeypatch):
    monkeypatch.setattr("fleet.views.services.list_containers", lambda host, user: [])

    page = owner_client.get(reverse("fleet:host-detail", args=[manager.pk])).content.decode()

    assert 'id="swarm-nodes"' in page and NODE in page and "10.0.0.2" in page and "20.10.24" in page
    # A label named like a dict method ("items") is one more label, not what the template iterates.
    assert "items=x, zone=a" in page
    drain = reverse("fleet:node-availability", args=[manager.pk, NODE])
    assert f'action="{drain}" class="inline" data-confirm="Drain the node n1' in page


def test_the_page_drains_and_redirects(owner_client, manager, fake_engine):
    answer = owner_client.post(reverse("fleet:node-availability", args=[manager.pk, NODE]), {"availability": "drain"})

    assert answer.status_code == 302 and answer.url == reverse("fleet:host-detail", args=[manager.pk])
    assert fake_engine["update"] == [(NODE, "drain")]


def test_the_page_shows_a_refusal_as_a_message(owner_client, manager, fake_engine):
    answer = owner_client.post(reverse("fleet:node-availability", args=[manager.pk, "n1"]), {"availability": "drain"},
                               follow=True)

    assert answer.status_code == 200
    assert "node id is the 25 lowercase letters" in answer.content.decode()
    assert fake_engine["update"] == []


def test_the_page_refuses_outsiders_and_get(client, outsider, manager, fake_engine):
    client.force_login(outsider)
    target = reverse("fleet:node-availability", args=[manager.pk, NODE])

    assert client.post(target, {"availability": "drain"}).status_code == 404
    assert client.get(target).status_code == 405
    assert fake_engine["update"] == []


# -- the engine's answer in the console's words -----------------------------------------------------------------

def test_a_node_record_takes_a_managers_address_from_its_manager_status():
    node = node_record({
        "ID": NODE, "Spec": {"Role": "manager", "Availability": "active", "Labels": {"a": "b"}},
        "Description": {"Hostname": "m", "Engine": {"EngineVersion": "20.10.24"}},
        "Status": {"State": "ready", "Addr": "0.0.0.0"},
        "ManagerStatus": {"Leader": True, "Addr": "10.0.0.1:2377"},
    })

    assert node == {"id": NODE, "hostname": "m", "role": "manager", "availability": "active", "state": "ready",
                    "address": "10.0.0.1", "engine_version": "20.10.24", "labels": {"a": "b"}, "leader": True}


def test_a_node_record_ignores_what_is_not_text():
    assert node_record({"ID": 5, "Spec": {"Labels": ["x"]}, "Status": None})["id"] == ""
