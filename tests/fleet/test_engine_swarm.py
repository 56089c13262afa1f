"""A swarm registered as a host, against a real swarm of three engines (tests/fixtures/swarm.py): the nodes the check
records, drain and activate, who may, what is refused, a worker's engine and a plain one, a manager that stops."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console.audit.models import AuditEvent
from fleet.models import Host
from fleet.tasks import check_hosts
from tests.fixtures.swarm import swarm  # noqa: F401  (the module's swarm)

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def register(api, fleet_host, name: str) -> dict:
    answer = api.post("/api/v1/hosts/", {"name": name, "url": fleet_host.url}, format="json")
    assert answer.status_code == 201, answer.json()
    checked = api.post(f"/api/v1/hosts/{answer.json()['id']}/check/")
    assert checked.status_code == 200 and checked.json()["status"] == "up", checked.json()
    return checked.json()


def availability(body: dict, node_id: str) -> str:
    return next(node["availability"] for node in body["swarm"]["nodes"] if node["id"] == node_id)


def engine_availability(swarm, label: str) -> str:  # noqa: F811
    return next(node["Spec"]["Availability"] for node in swarm.nodes() if node["ID"] == swarm.node_ids[label])


def test_it_shows_the_nodes_of_a_registered_manager(owner_api, owner_client, swarm):  # noqa: F811
    body = register(owner_api, swarm.manager, "swarm")

    assert body["swarm_reason"] == ""
    assert body["swarm"]["id"] == swarm.swarm_id and body["swarm"]["managers"] == 1
    nodes = {node["id"]: node for node in body["swarm"]["nodes"]}
    assert set(nodes) == set(swarm.node_ids.values())
    for member in swarm.members:
        node = nodes[swarm.node_ids[member.label]]
        assert node["role"] == ("manager" if member is swarm.manager else "worker")
        assert node["address"] == member.address
        assert node["state"] == "ready" and node["availability"] == "active"
        assert node["engine_version"] == body["info"]["server_version"] != ""
    assert body["swarm"]["nodes"][0]["role"] == "manager" and body["swarm"]["nodes"][0]["leader"] is True

    page = owner_client.get(reverse("fleet:host-detail", args=[body["id"]])).content.decode()
    assert 'id="swarm-nodes"' in page
    assert all(node_id in page for node_id in swarm.node_ids.values())


def test_a_plain_engine_has_no_swarm(owner_api, swarm):  # noqa: F811
    body = register(owner_api, swarm.plain, "plain")

    assert body["swarm"] is None and body["swarm_reason"] == "The engine is not in swarm mode."


def test_a_workers_engine_has_no_swarm_and_says_why(owner_api, swarm):  # noqa: F811
    body = register(owner_api, swarm.workers[0], "worker")

    assert body["swarm"] is None
    assert "worker node" in body["swarm_reason"] and "register a manager" in body["swarm_reason"]
    node_id = swarm.node_ids[swarm.workers[1].label]
    answer = owner_api.post(f"/api/v1/hosts/{body['id']}/swarm/nodes/{node_id}/availability/",
                            {"availability": "drain"}, format="json")
    assert answer.status_code == 409 and "not a swarm manager" in answer.json()["detail"]
    assert engine_availability(swarm, swarm.workers[1].label) == "active"


def test_a_stale_record_of_a_manager_meets_the_engines_own_refusal(owner_api, owner, swarm):  # noqa: F811
    # Recorded as a manager, now a worker (demoted since the last check): the engine refuses, nothing is written.
    body = register(owner_api, swarm.workers[0], "was-manager")
    recorded = {"id": swarm.swarm_id, "managers": 1, "nodes": []}
    Host.objects.filter(pk=body["id"]).update(swarm=recorded)
    node_id = swarm.node_ids[swarm.workers[1].label]

    answer = owner_api.post(f"/api/v1/hosts/{body['id']}/swarm/nodes/{node_id}/availability/",
                            {"availability": "drain"}, format="json")

    assert answer.status_code == 502, answer.json()
    assert "not a swarm manager" in answer.json()["detail"]
    assert Host.objects.get(pk=body["id"]).swarm == recorded
    assert not AuditEvent.objects.filter(action="node_availability_set").exists()
    assert engine_availability(swarm, swarm.workers[1].label) == "active"


def test_it_drains_and_activates_a_worker(owner_api, owner_client, swarm):  # noqa: F811
    body = register(owner_api, swarm.manager, "swarm")
    worker = swarm.workers[1]
    node_id = swarm.node_ids[worker.label]
    path = f"/api/v1/hosts/{body['id']}/swarm/nodes/{node_id}/availability/"
    try:
        answer = owner_api.post(path, {"availability": "drain"}, format="json")

        assert answer.status_code == 200, answer.json()
        assert answer.json()["id"] == node_id and answer.json()["availability"] == "drain"
        assert engine_availability(swarm, worker.label) == "drain"
        # The host was checked again: its record (what pages and the API read) says so.
        assert availability(owner_api.get(f"/api/v1/hosts/{body['id']}/").json(), node_id) == "drain"

        # The page's Activate button: post, redirect, get.
        page = owner_client.post(reverse("fleet:node-availability", args=[body["id"], node_id]),
                                 {"availability": "active"}, follow=True)
        assert page.redirect_chain == [(reverse("fleet:host-detail", args=[body["id"]]), 302)]
        assert "is now active" in page.content.decode()
        assert engine_availability(swarm, worker.label) == "active"
        assert availability(owner_api.get(f"/api/v1/hosts/{body['id']}/").json(), node_id) == "active"
    finally:
        swarm.set_availability(worker.label, "active")


# Committed: the periodic check reads the hosts from threads of its own, with connections of their own.
@pytest.mark.django_db(transaction=True)
def test_the_periodic_check_sees_a_change_made_behind_the_consoles_back(owner_api, swarm):  # noqa: F811
    body = register(owner_api, swarm.manager, "swarm")
    worker = swarm.workers[0]
    try:
        swarm.set_availability(worker.label, "pause")

        check_hosts.apply()
        assert availability(owner_api.get(f"/api/v1/hosts/{body['id']}/").json(), swarm.node_ids[worker.label]) \
            == "pause"
    finally:
        swarm.set_availability(worker.label, "active")


def test_outsiders_and_bad_node_ids_change_nothing(owner_api, api_client, outsider, swarm):  # noqa: F811
    body = register(owner_api, swarm.manager, "swarm")
    node_id = swarm.node_ids[swarm.workers[0].label]
    api_client.force_authenticate(outsider)

    answer = api_client.post(f"/api/v1/hosts/{body['id']}/swarm/nodes/{node_id}/availability/",
                             {"availability": "drain"}, format="json")
    assert answer.status_code == 404

    hostname = body["swarm"]["nodes"][1]["hostname"]
    for bad in (node_id[:12], node_id.upper(), hostname, node_id + "x"):
        answer = owner_api.post(f"/api/v1/hosts/{body['id']}/swarm/nodes/{bad}/availability/",
                                {"availability": "drain"}, format="json")
        assert answer.status_code == 400, (bad, answer.json())
    # Well formed, but no node of this swarm: the engine's 404, in words.
    answer = owner_api.post(f"/api/v1/hosts/{body['id']}/swarm/nodes/{'z' * 25}/availability/",
                            {"availability": "drain"}, format="json")
    assert answer.status_code == 404 and "z" * 25 in answer.json()["detail"]
    assert {node["Spec"]["Availability"] for node in swarm.nodes()} == {"active"}
    assert not AuditEvent.objects.filter(action="node_availability_set").exists()


def test_a_stopped_manager_is_down_and_nothing_else_changes(owner_api, swarm):  # noqa: F811
    body = register(owner_api, swarm.manager, "swarm")
    swarm.manager.stop()
    try:
        checked = owner_api.post(f"/api/v1/hosts/{body['id']}/check/").json()

        assert checked["status"] == "down" and "does not answer" in checked["status_reason"]
        assert checked["swarm"] == body["swarm"] and checked["info"] == body["info"]
        node_id = swarm.node_ids[swarm.workers[0].label]
        answer = owner_api.post(f"/api/v1/hosts/{body['id']}/swarm/nodes/{node_id}/availability/",
                                {"availability": "drain"}, format="json")
        assert answer.status_code == 503 and "does not answer" in answer.json()["detail"]
        assert Host.objects.get(pk=body["id"]).swarm == body["swarm"]
        assert not AuditEvent.objects.filter(action="node_availability_set").exists()
    finally:
        # The same data and address: the manager comes back as the swarm's manager, for the tests after this one.
        swarm.manager.start()
        swarm.wait_ready()
