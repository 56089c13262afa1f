"""ssh:// hosts against a real OpenSSH sshd in front of a fleet engine: register through the API with a key, check
(the host key is recorded on first use, then required), deploy with a real worker, list containers."""

from __future__ import annotations

import pytest

from builds import access
from console.engine import Engine, SSHMaterial
from console.pagination import MAX_PAGE_SIZE
from fleet.models import Host
from tests.fixtures.fleet import ssh_key_pair, ssh_server, wait_final  # noqa: F401  (the module's sshd)
from tests.fixtures.worker import routed_to, running_worker
from tests.fleet.conftest import HELLO, http_get, remove_app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def no_check(monkeypatch):
    """Registering queues a check; these tests check synchronously instead."""
    monkeypatch.setattr("fleet.tasks.check_host.delay", lambda host_id: None)


def register(api, server, **fields) -> dict:  # noqa: F811
    answer = api.post("/api/v1/hosts/", {"name": "over-ssh", "url": server.url,
                                         "ssh_private_key": server.client_key, **fields}, format="json")
    assert answer.status_code == 201, answer.json()
    return answer.json()


def test_it_registers_checks_deploys_to_and_lists_an_ssh_host(owner_api, owner, fleet, ssh_server, images,  # noqa: F811
                                                               no_check, tmp_path):
    body = register(owner_api, ssh_server)
    assert body["ssh_key"] is True and body["ssh_host_key"] == ""
    assert "ssh_private_key" not in body and "PRIVATE KEY" not in str(body)

    checked = owner_api.post(f"/api/v1/hosts/{body['id']}/check/").json()

    assert checked["status"] == "up", checked
    assert checked["info"]["api_version"] == "1.41"
    # Trust on first use: the key the server presented is recorded, and shown with its fingerprint.
    assert checked["ssh_host_key"] == ssh_server.host_key
    assert checked["ssh_host_key_fingerprint"].startswith("SHA256:")
    with fleet.plain.engine() as engine:
        assert Host.objects.get(pk=body["id"]).engine_id == engine.engine_id()

    access.share_image(HELLO, images[HELLO])
    try:
        with running_worker(tmp_path, queues=("celery",), concurrency=1) as worker, routed_to(worker):
            answer = owner_api.post("/api/v1/deployments/", {
                "image": HELLO, "hosts": [body["id"]], "name": "sshapp", "ports": {"8080/tcp": 8484},
                "env": {"WHO": "ssh"}}, format="json")
            assert answer.status_code == 202, answer.json()
            deployed = wait_final(owner_api, answer.json()["id"])
        assert deployed["status"] == "succeeded", deployed
        (target,) = deployed["targets"]
        assert target["url"] == f"http://{ssh_server.address}:8484/"
        assert http_get(target["url"]) == "Hello ssh. Wish you were here.\n"

        listed = owner_api.get(f"/api/v1/hosts/{body['id']}/containers/", {"page_size": MAX_PAGE_SIZE}).json()
        (container,) = [item for item in listed["results"] if item["labels"].get("console.deployment.name") == "sshapp"]
        assert container["id"] == target["container_id"] and container["state"] == "running"
        assert container["labels"]["console.deployment.owner"] == str(owner.pk)
    finally:
        remove_app(fleet, "sshapp")


def test_a_host_key_that_is_not_the_recorded_one_is_refused(owner_api, ssh_server, no_check):  # noqa: F811
    _, impostor = ssh_key_pair()
    body = register(owner_api, ssh_server, ssh_host_key=impostor)
    assert body["ssh_host_key"] == " ".join(impostor.split()[:2])

    checked = owner_api.post(f"/api/v1/hosts/{body['id']}/check/").json()

    assert checked["status"] == "down"
    assert "the ssh host key of" in checked["status_reason"]
    assert "is not the one recorded for it" in checked["status_reason"]
    assert Host.objects.get(pk=body["id"]).ssh_host_key == " ".join(impostor.split()[:2])


def test_a_key_the_server_does_not_know_is_refused(ssh_server):  # noqa: F811
    stranger, _ = ssh_key_pair()
    with Engine(ssh_server.url, timeout=10, ssh=SSHMaterial(stranger, ssh_server.host_key)) as engine:
        with pytest.raises(Exception) as caught:
            engine.ping()
    assert str(caught.value) == f"Connecting: the ssh server at {ssh_server.url} refused the key"


@pytest.mark.parametrize(("payload", "field", "message"), [
    ({"url": "ssh://root@10.0.0.9"}, "ssh_private_key", "An ssh:// host needs the private key the console logs in "
                                                         "with."),
    ({"url": "ssh://root@10.0.0.9", "ssh_private_key": "not a key"}, "ssh_private_key",
     "This is not an unencrypted ed25519, ECDSA or RSA private key (OpenSSH or PEM text)."),
    ({"url": "ssh://root:hunter2@10.0.0.9"}, "url", "An ssh:// URL is ssh://user@host[:port], without a password: "
                                                     "give the private key in ssh_private_key."),
    ({"url": "tcp://10.0.0.9:2375", "ssh_host_key": "ssh-ed25519 AAAA"}, "ssh_host_key",
     "Give the server's public host key as one line, like 'ssh-ed25519 AAAA...' (ssh-keyscan prints it)."),
])
def test_bad_ssh_hosts_are_refused_with_a_message(owner_api, payload, field, message):
    answer = owner_api.post("/api/v1/hosts/", {"name": "x", **payload}, format="json")
    assert answer.status_code == 400
    assert answer.json() == {field: [message]}
    assert not Host.objects.exists()
