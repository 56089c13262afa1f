"""/api/v1/hosts/: register, read, change, remove, check; against the fleet's real engines."""

from __future__ import annotations

import pytest

from fleet.models import Host
from tests.fixtures.fleet import issue, make_ca
from tests.fleet.conftest import register


@pytest.fixture
def no_check(monkeypatch):
    """Registering queues a check on the broker; these tests check synchronously instead."""
    sent = []
    monkeypatch.setattr("fleet.tasks.check_host.delay", lambda host_id: sent.append(host_id))
    return sent


def test_it_registers_a_tls_host_and_never_shows_its_material(owner_api, owner, fleet, no_check,
                                                               django_capture_on_commit_callbacks):
    tls = fleet.tls.tls
    with django_capture_on_commit_callbacks(execute=True):
        answer = owner_api.post("/api/v1/hosts/", {
            "name": "edge", "url": fleet.tls.url, "labels": {"env": "prod"}, "tls_ca_cert": tls.ca_cert,
            "tls_client_cert": tls.client_cert, "tls_client_key": tls.client_key,
        }, format="json")
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["tls"] is True and body["address"] == fleet.tls.address and body["status"] == "unknown"
    assert not {"tls_ca_cert", "tls_client_cert", "tls_client_key"} & set(body)
    assert "PRIVATE KEY" not in answer.content.decode()
    assert no_check == [body["id"]]
    host = Host.objects.get(pk=body["id"])
    assert host.tls_client_key == tls.client_key
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("select tls_client_key from fleet_host where id = %s", [host.pk])
        assert "PRIVATE KEY" not in cursor.fetchone()[0]


@pytest.mark.parametrize(("payload", "field", "message"), [
    ({"name": "x", "url": "http://10.0.0.1:2375"}, "url", "Use unix:///path, tcp://host:port or ssh://user@host."),
    ({"name": "x", "url": "tcp://10.0.0.1"}, "url", "Give the engine's port, like tcp://10.0.0.5:2376."),
    ({"name": "x", "url": "ssh://10.0.0.1"}, "url", "An ssh:// URL names the user and the host: ssh://user@host."),
    ({"name": "x", "url": "tcp://10.0.0.1:2376", "tls_ca_cert": "nope", "tls_client_cert": "a", "tls_client_key": "b"},
     "tls_ca_cert", "This is not a PEM certificate."),
    ({"name": "x", "url": "tcp://h:2376", "labels": ["env"]}, "labels", 'Labels are an object like {"env": "prod"}.'),
    ({"url": "tcp://h:2376"}, "name", "Give the host a name."),
])
def test_it_refuses_bad_hosts_with_a_message(owner_api, payload, field, message):
    answer = owner_api.post("/api/v1/hosts/", payload, format="json")
    assert answer.status_code == 400
    assert answer.json() == {field: [message]}
    assert not Host.objects.exists()


def test_it_refuses_half_the_tls_material(owner_api, fleet):
    answer = owner_api.post("/api/v1/hosts/", {"name": "x", "url": fleet.tls.url,
                                               "tls_ca_cert": fleet.tls.tls.ca_cert}, format="json")
    assert answer.status_code == 400
    assert "TLS needs all three" in answer.json()["tls_ca_cert"][0]


def test_it_refuses_a_second_host_of_the_same_name(owner_api, owner):
    Host.objects.create(owner=owner, name="one", url="tcp://10.0.0.1:2375")
    answer = owner_api.post("/api/v1/hosts/", {"name": "one", "url": "tcp://10.0.0.2:2375"}, format="json")
    assert answer.status_code == 400
    assert answer.json() == {"name": ["You already have a host named 'one'."]}


def test_it_changes_labels_and_address(owner_api, owner, no_check):
    host = Host.objects.create(owner=owner, name="one", url="tcp://10.0.0.1:2375")
    answer = owner_api.patch(f"/api/v1/hosts/{host.pk}/", {"labels": {"env": "prod"}, "address": "app.example"},
                             format="json")
    assert answer.status_code == 200
    assert answer.json()["labels"] == {"env": "prod"} and answer.json()["address"] == "app.example"
    host.refresh_from_db()
    assert host.address_override == "app.example"
    answer = owner_api.patch(f"/api/v1/hosts/{host.pk}/", {"address": ""}, format="json")
    assert answer.json()["address"] == "10.0.0.1"


def test_it_deletes_a_host(owner_api, owner):
    host = Host.objects.create(owner=owner, name="one", url="tcp://10.0.0.1:2375")
    assert owner_api.delete(f"/api/v1/hosts/{host.pk}/").status_code == 204
    assert not Host.objects.exists()


def test_the_list_is_newest_first_not_by_name(owner_api, owner):
    Host.objects.create(owner=owner, name="alpha", url="tcp://10.0.0.1:2375")
    Host.objects.create(owner=owner, name="zeta", url="tcp://10.0.0.2:2375")
    body = owner_api.get("/api/v1/hosts/").json()
    assert body["count"] == 2
    assert [item["name"] for item in body["results"]] == ["zeta", "alpha"]


def test_outsiders_get_404(api_client, outsider, owner):
    host = Host.objects.create(owner=owner, name="one", url="tcp://10.0.0.1:2375")
    api_client.force_authenticate(outsider)
    assert api_client.get("/api/v1/hosts/").json()["results"] == []
    for method, path in (("get", ""), ("patch", ""), ("delete", ""), ("post", "check/"), ("get", "containers/")):
        assert getattr(api_client, method)(f"/api/v1/hosts/{host.pk}/{path}").status_code == 404
    assert Host.objects.filter(pk=host.pk).exists()


def test_anonymous_callers_are_refused(api_client):
    assert api_client.get("/api/v1/hosts/").status_code == 401


def test_put_is_not_allowed(owner_api, owner):
    host = Host.objects.create(owner=owner, name="one", url="tcp://10.0.0.1:2375")
    assert owner_api.put(f"/api/v1/hosts/{host.pk}/", {"name": "x"}, format="json").status_code == 405


def test_each_host_reports_its_own_engine(owner_api, owner, fleet):
    hosts = [register(owner, fleet_host) for fleet_host in fleet]
    for host, fleet_host in zip(hosts, fleet, strict=True):
        body = owner_api.post(f"/api/v1/hosts/{host.pk}/check/").json()
        assert body["status"] == "up", body
        assert body["last_seen"] is not None
        assert body["info"]["storage_driver"] == fleet_host.storage_driver
        assert body["info"]["api_version"] == "1.41"
        assert body["address"] == fleet_host.address
    assert owner_api.get(f"/api/v1/hosts/{hosts[2].pk}/").json()["info"]["storage_driver"] == "vfs"
    assert {h.info["storage_driver"] for h in Host.objects.all()} == {"overlay2", "vfs"}


def test_a_wrong_client_certificate_is_refused(owner_api, owner, fleet):
    stranger = make_ca("not the fleet's CA")
    cert, key = issue(stranger, "impostor", client=True)
    host = register(owner, fleet.tls, name="impostor")
    host.tls_client_cert, host.tls_client_key = cert, key
    host.save()
    body = owner_api.post(f"/api/v1/hosts/{host.pk}/check/").json()
    assert body["status"] == "down"
    assert body["status_reason"].startswith(f"Connecting: the TLS handshake with {fleet.tls.url} failed")
    assert owner_api.get(f"/api/v1/hosts/{host.pk}/containers/").status_code == 503


def test_a_host_without_tls_material_cannot_reach_a_tls_engine(owner_api, owner, fleet):
    host = Host.objects.create(owner=owner, name="bare", url=fleet.tls.url)
    body = owner_api.post(f"/api/v1/hosts/{host.pk}/check/").json()
    assert body["status"] == "down"
    assert body["status_reason"]
