"""/api/v1/hosts/{id}/containers/...: list, act, logs, on a real engine of the fleet."""

from __future__ import annotations

import contextlib

import pytest

from console.engine import Engine, EngineNotFound
from console.engine.containers import ContainerSpec, create_container
from console.engine.transfer import copy_image
from console.pagination import MAX_PAGE_SIZE
from tests.fleet.conftest import BROKEN, HELLO, register


@pytest.fixture
def container(fleet, images):
    """A stopped hello container on the plain host (copied there by the save->load path)."""
    with Engine.for_builds() as source, fleet.plain.engine() as engine:
        copy_image(source, engine, HELLO)
        container_id = create_container(engine, ContainerSpec(image=HELLO, name="loose", env={"WHO": "logs"},
                                                              labels={"purpose": "test"}))
    yield container_id
    with contextlib.suppress(EngineNotFound), fleet.plain.engine() as engine, engine.errors("Cleaning up"):
        engine.api.remove_container(container_id, force=True)


def test_it_lists_starts_reads_logs_stops_and_removes(owner_api, owner, fleet, container):
    host = register(owner, fleet.plain)
    base = f"/api/v1/hosts/{host.pk}/containers/"
    # One page as large as pages go: the fleet's engine may hold other containers beside this one.
    listed = {item["name"]: item for item in owner_api.get(base, {"page_size": MAX_PAGE_SIZE}).json()["results"]}
    assert listed["loose"]["id"] == container
    assert listed["loose"]["state"] == "created"
    assert listed["loose"]["image"] == HELLO
    assert listed["loose"]["labels"]["purpose"] == "test"

    started = owner_api.post(f"{base}loose/start/")
    assert started.status_code == 200 and started.json()["state"] == "running"
    assert owner_api.post(f"{base}{container}/stop/").json()["state"] == "exited"
    assert owner_api.post(f"{base}{container}/restart/").json()["state"] == "running"
    assert owner_api.post(f"{base}{container}/remove/").status_code == 204
    assert "loose" not in {item["name"] for item in owner_api.get(base, {"page_size": MAX_PAGE_SIZE}).json()["results"]}


def test_it_returns_the_last_lines_of_a_containers_output(owner_api, owner, fleet, images):
    host = register(owner, fleet.plain)
    with Engine.for_builds() as source, fleet.plain.engine() as engine:
        copy_image(source, engine, BROKEN)
        container_id = create_container(engine, ContainerSpec(image=BROKEN, name="talker"))
        engine.api.start(container_id)
        engine.api.wait(container_id, timeout=30)
    try:
        logs = owner_api.get(f"/api/v1/hosts/{host.pk}/containers/talker/logs/?tail=5")
        assert logs.status_code == 200
        assert logs.json() == {"container": "talker", "tail": 5, "logs": "broken on purpose\n"}
    finally:
        owner_api.post(f"/api/v1/hosts/{host.pk}/containers/{container_id}/remove/")


def test_bad_requests_are_4xx(owner_api, owner, fleet):
    host = register(owner, fleet.plain)
    base = f"/api/v1/hosts/{host.pk}/containers/"
    assert owner_api.post(f"{base}nosuchcontainer/stop/").status_code == 404
    assert owner_api.post(f"{base}abc/explode/").status_code == 404
    assert owner_api.get(f"{base}abc/stop/").status_code == 405
    answer = owner_api.get(f"{base}abc/logs/?tail=lots")
    assert answer.status_code == 400 and answer.json() == {"tail": ["tail is a whole number of lines."]}
    assert owner_api.get(f"{base}abc/logs/?tail=0").status_code == 400


def test_outsiders_cannot_touch_containers(api_client, outsider, owner, fleet, container):
    host = register(owner, fleet.plain)
    api_client.force_authenticate(outsider)
    assert api_client.post(f"/api/v1/hosts/{host.pk}/containers/{container}/start/").status_code == 404
    assert api_client.get(f"/api/v1/hosts/{host.pk}/containers/{container}/logs/").status_code == 404
    with fleet.plain.engine() as engine:
        assert engine.api.inspect_container(container)["State"]["Status"] == "created"
