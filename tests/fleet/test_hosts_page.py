"""/hosts/: the list with status, storage driver and address, and the add form."""

from __future__ import annotations

from fleet.models import Host


def test_it_lists_hosts_with_status_driver_and_address(owner_client, owner, outsider):
    Host.objects.create(owner=owner, name="edge", url="tcp://10.0.0.7:2376", status="up",
                        info={"storage_driver": "vfs", "server_version": "20.10"})
    Host.objects.create(owner=outsider, name="theirs", url="tcp://10.0.0.8:2376")
    page = owner_client.get("/hosts/").content.decode()
    assert "edge" in page and "vfs" in page and "10.0.0.7" in page
    assert "theirs" not in page


def test_it_adds_a_host(owner_client, owner, monkeypatch):
    monkeypatch.setattr("fleet.tasks.check_host.delay", lambda host_id: None)
    answer = owner_client.post("/hosts/", {"name": "edge", "url": "tcp://10.0.0.7:2375", "labels": "env=prod"})
    host = Host.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/hosts/{host.pk}/"
    assert host.labels == {"env": "prod"}


def test_a_bad_url_is_a_form_error(owner_client):
    answer = owner_client.post("/hosts/", {"name": "edge", "url": "http://x"})
    assert answer.status_code == 200
    assert "Use unix:///path, tcp://host:port or ssh://user@host." in answer.content.decode()
    assert not Host.objects.exists()


def test_wrong_method_and_anonymous(owner_client):
    assert owner_client.put("/hosts/").status_code == 405
    owner_client.logout()
    assert owner_client.get("/hosts/").status_code == 302
