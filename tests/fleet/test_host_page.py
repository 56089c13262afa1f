"""/hosts/<id>/: facts, containers with actions, logs; against the fleet's plain engine."""

from __future__ import annotations

from console.engine import Engine
from console.engine.containers import ContainerSpec, create_container
from console.engine.transfer import copy_image
from fleet.models import Host
from tests.fleet.conftest import BROKEN, register


def test_it_shows_containers_logs_and_acts_on_them(owner_client, owner, fleet, images):
    host = register(owner, fleet.plain)
    with Engine.for_builds() as source, fleet.plain.engine() as engine:
        copy_image(source, engine, BROKEN)
        container_id = create_container(engine, ContainerSpec(image=BROKEN, name="pagey"))
    try:
        assert owner_client.post(f"/hosts/{host.pk}/containers/{container_id}/start/").status_code == 302
        with fleet.plain.engine() as engine, engine.errors("Waiting"):
            engine.api.wait(container_id, timeout=30)
        page = owner_client.get(f"/hosts/{host.pk}/?logs={container_id}").content.decode()
        assert "pagey" in page and "broken on purpose" in page
        owner_client.post(f"/hosts/{host.pk}/containers/{container_id}/remove/")
        assert "pagey" not in owner_client.get(f"/hosts/{host.pk}/").content.decode()
    finally:
        owner_client.post(f"/hosts/{host.pk}/containers/{container_id}/remove/")


def test_a_host_that_does_not_answer_says_why(owner_client, owner):
    host = Host.objects.create(owner=owner, name="gone", url="tcp://127.0.0.1:9")
    page = owner_client.get(f"/hosts/{host.pk}/").content.decode()
    assert "does not answer (connection refused)" in page
    answer = owner_client.post(f"/hosts/{host.pk}/check/", follow=True)
    assert "gone is down" in answer.content.decode()
    host.refresh_from_db()
    assert host.status == "down"


def test_it_removes_a_host(owner_client, owner):
    host = Host.objects.create(owner=owner, name="gone", url="tcp://127.0.0.1:9")
    assert owner_client.post(f"/hosts/{host.pk}/delete/").status_code == 302
    assert not Host.objects.exists()


def test_outsiders_get_404_and_wrong_methods_405(client, outsider, owner, owner_client):
    host = Host.objects.create(owner=owner, name="mine", url="tcp://127.0.0.1:9")
    assert owner_client.get(f"/hosts/{host.pk}/delete/").status_code == 405
    assert owner_client.post(f"/hosts/{host.pk}/").status_code == 405
    client.force_login(outsider)
    assert client.get(f"/hosts/{host.pk}/").status_code == 404
    assert client.post(f"/hosts/{host.pk}/delete/").status_code == 404
    assert client.post(f"/hosts/{host.pk}/containers/abc/stop/").status_code == 404
    assert Host.objects.filter(pk=host.pk).exists()
