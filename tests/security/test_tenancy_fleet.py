"""Tenancy of the fleet, each attack replayed against the real fleet engines and a real worker.

- A host URL that reaches the console's own machine (its engine socket, loopback, link-local, its own addresses,
  a build node's engine) is refused for users who are not staff, at registration and again at connection time.
- A host check never reflects what a service that is not an engine answered (no port scanner with an echo).
- On an engine two users registered, each sees and touches only the containers deployed for them; another
  user's container is 404, and a deployment named like another user's app leaves that app's container alone.

tests/settings.py lets the test infrastructure's networks through (OUTBOUND_ALLOWED_NETWORKS); these tests put the
production default, [], back with pytest-django's `settings` fixture.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from builds import access
from builds.models import BuildNode
from console.engine import Engine, EngineConflict, EngineNotFound
from console.engine.containers import ContainerSpec, create_container
from console.engine.transfer import copy_image
from console.pagination import MAX_PAGE_SIZE
from fleet import services
from fleet.models import Host
from tests.fixtures.fleet import fleet, wait_final  # noqa: F401  (the session's engines)
from tests.fixtures.worker import routed_to, running_worker
from tests.fleet.conftest import ROOT, _build, http_get, remove_app

# examples/hello under a name of this module's own, so that no other module's clean-up removes it under our feet.
HELLO = "console-test/tenancy-hello:1"

SECRET = b"SECRET-BANNER"


@pytest.fixture(scope="module")
def images() -> Iterator[dict[str, str]]:
    with Engine.for_builds() as engine:
        built = {HELLO: _build(engine, HELLO, path=str(ROOT / "examples" / "hello"))}
    yield built
    with contextlib.suppress(EngineNotFound), Engine.for_builds() as engine, engine.errors("Cleaning up"):
        engine.api.remove_image(HELLO, force=True)


@pytest.fixture(autouse=True)
def production_network_policy(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []


@pytest.fixture(autouse=True)
def no_check(monkeypatch):
    """Registering queues a check on the broker; these tests check synchronously, when they check."""
    monkeypatch.setattr("fleet.tasks.check_host.delay", lambda host_id: None)


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# -- host URLs that reach the console's own machine -------------------------------------------------------

OWN_MACHINE_URLS = [
    ("unix:///var/run/docker.sock", "A unix:// Docker host is on the console's own machine"),
    ("tcp://127.0.0.1:2375", "is a loopback address"),
    ("tcp://127.1.2.3:5432", "is a loopback address"),
    ("tcp://localhost:6379", "is a loopback address"),
    ("tcp://[::1]:2375", "is a loopback address"),
    ("tcp://169.254.169.254:80", "is a link-local address"),
    ("tcp://0.0.0.0:2375", "is an unspecified address"),
    ("ssh://root@127.0.0.1:22", "is a loopback address"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "reason"), OWN_MACHINE_URLS)
def test_non_staff_cannot_register_a_host_on_the_consoles_machine(owner_api, url, reason):
    extra = {"ssh_private_key": _ssh_key()} if url.startswith("ssh") else {}
    answer = owner_api.post("/api/v1/hosts/", {"name": "mine", "url": url, **extra}, format="json")
    assert answer.status_code == 400, answer.json()
    (message,) = answer.json()["url"]
    assert reason in message and "only staff may use" in message
    assert not Host.objects.exists()


@pytest.mark.django_db
def test_non_staff_cannot_register_the_machines_own_address_nor_a_build_nodes_engine(owner_api, fleet):  # noqa: F811
    # The fleet's gateways are addresses of this machine (the host side of each namespace's link).
    answer = owner_api.post("/api/v1/hosts/", {"name": "gw", "url": f"tcp://{fleet.plain.gateway}:2375"},
                            format="json")
    assert answer.status_code == 400
    assert "an address of the console's own machine" in answer.json()["url"][0]
    BuildNode.objects.create(name="farm-1", engine_url=fleet.vfs.url, queue="builds-farm-1")
    answer = owner_api.post("/api/v1/hosts/", {"name": "farm", "url": fleet.vfs.url}, format="json")
    assert answer.status_code == 400
    assert "the address of one of the console's own services" in answer.json()["url"][0]
    # Not by changing a host's URL either.
    host = owner_api.post("/api/v1/hosts/", {"name": "ok", "url": fleet.plain.url}, format="json").json()
    answer = owner_api.patch(f"/api/v1/hosts/{host['id']}/", {"url": "unix:///var/run/docker.sock"}, format="json")
    assert answer.status_code == 400 and "only staff may use it" in answer.json()["url"][0]
    assert Host.objects.get(pk=host["id"]).url == fleet.plain.url


@pytest.mark.django_db
def test_the_browser_form_says_why(owner_client):
    answer = owner_client.post("/hosts/", {"name": "sock", "url": "unix:///var/run/docker.sock"})
    assert answer.status_code == 200
    assert "on the console&#x27;s own machine: only staff may use it." in answer.content.decode()
    assert not Host.objects.exists()


@pytest.mark.django_db
def test_staff_may_register_the_consoles_own_engine(staff):
    answer = api_for(staff).post("/api/v1/hosts/", {"name": "local", "url": "unix:///var/run/docker.sock"},
                                 format="json")
    assert answer.status_code == 201, answer.json()
    host = Host.objects.get(pk=answer.json()["id"])
    assert services.check_host(host).status == "up"


@pytest.mark.django_db
def test_a_host_whose_url_became_refused_reports_it_instead_of_connecting(owner, owner_api, owner_client):
    # Registered while loopback was allowed (or before the policy); the check and every connection re-check it.
    host = Host.objects.create(owner=owner, name="old", url="unix:///var/run/docker.sock")

    checked = owner_api.post(f"/api/v1/hosts/{host.pk}/check/").json()

    assert checked["status"] == "down"
    assert checked["status_reason"] == ("Connecting: A unix:// Docker host is on the console's own machine: only "
                                        "staff may use it.")
    assert checked["info"] is None
    answer = owner_api.get(f"/api/v1/hosts/{host.pk}/containers/")
    assert answer.status_code == 503 and "only staff may use it" in answer.json()["detail"]
    assert owner_api.get(f"/api/v1/hosts/{host.pk}/containers/abc/logs/").status_code == 503
    page = owner_client.get(f"/hosts/{host.pk}/").content.decode()
    assert "only staff may use it" in page


# -- no reflection of what a non-engine answered -------------------------------------------------------------

def _http(status: str, content_type: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + body


def _fake_engine(request: bytes) -> bytes:
    # Answers /version like an engine, then everything else with the secret.
    if b" /version" in request.split(b"\r\n", 1)[0]:
        return _http("200 OK", "application/json", b'{"ApiVersion": "1.41", "Version": "SECRET-BANNER"}')
    return _http("500 Internal Server Error", "text/plain", SECRET)


SERVICES = {
    # A raw TCP service that greets with a banner (an SMTP, Redis or SSH server, say).
    "banner": lambda request: SECRET + b"\r\n",
    "html": lambda request: _http("200 OK", "text/html", b"<html><title>" + SECRET + b"</title></html>"),
    "not-found": lambda request: _http("404 Not Found", "text/plain", SECRET),
    "reason": lambda request: _http("403 SECRET-BANNER", "text/plain", b""),
    "json": lambda request: _http("200 OK", "application/json", b'{"data": "SECRET-BANNER"}'),
    "fake-engine": _fake_engine,
}


@contextlib.contextmanager
def loopback_service(answer) -> Iterator[int]:
    """A TCP server on 127.0.0.1 that reads a request (or, for a banner, does not wait for one) and answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                request = b""
                if answer(b"") != SECRET + b"\r\n":
                    with contextlib.suppress(OSError):
                        while b"\r\n\r\n" not in request:
                            chunk = conn.recv(4096)
                            if not chunk:
                                break
                            request += chunk
                with contextlib.suppress(OSError):
                    conn.sendall(answer(request))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


@pytest.mark.django_db
@pytest.mark.parametrize("kind", sorted(SERVICES))
def test_a_host_check_never_shows_what_a_service_answered(staff, client, kind):
    api = api_for(staff)
    with loopback_service(SERVICES[kind]) as port:
        # Staff may aim a host at loopback; what comes back is still never shown.
        body = api.post("/api/v1/hosts/", {"name": kind, "url": f"tcp://127.0.0.1:{port}"}, format="json").json()
        checked = api.post(f"/api/v1/hosts/{body['id']}/check/")
        containers = api.get(f"/api/v1/hosts/{body['id']}/containers/")
        client.force_login(staff)
        page = client.get(f"/hosts/{body['id']}/").content + client.get("/hosts/").content

    assert checked.json()["status"] == "down"
    reason = checked.json()["status_reason"]
    assert reason.startswith(("Connecting: ", "Reading engine information")), reason
    assert "did not answer as a Docker Engine" in reason or "without answering as a Docker Engine" in reason, reason
    for answer in (checked.content, containers.content, page):
        assert SECRET not in answer
    assert containers.status_code in (502, 503)
    assert SECRET.decode() not in Host.objects.get(pk=body["id"]).status_reason


def test_an_engines_own_errors_are_still_shown(fleet, images):  # noqa: F811
    with Engine.for_builds() as source, Engine(fleet.plain.url) as engine:
        copy_image(source, engine, HELLO)
        with pytest.raises(EngineNotFound) as caught, engine.errors("Inspecting image"):
            engine.api.inspect_image("no-such-image:1")
        with pytest.raises(EngineConflict) as conflict, engine.errors("Creating"):
            engine.api.create_container(HELLO, name="tenancy-twice")
            engine.api.create_container(HELLO, name="tenancy-twice")
        engine.api.remove_container("tenancy-twice", force=True)
    assert str(caught.value).startswith("Inspecting image: ")
    assert "No such image: no-such-image:1" in str(caught.value)
    assert 'The container name "/tenancy-twice" is already in use' in str(conflict.value)


# -- two users on one engine ---------------------------------------------------------------------------------

def deploy(api, host_id: int, port: int, who: str) -> dict:
    answer = api.post("/api/v1/deployments/", {"image": HELLO, "hosts": [host_id], "name": "shop",
                                               "ports": {"8080/tcp": port}, "env": {"WHO": who}}, format="json")
    assert answer.status_code == 202, answer.json()
    return wait_final(api, answer.json()["id"])


def container_ids(api, host_id: int) -> set[str]:
    """Every container the host's list shows the caller: one page as large as pages go, more than an engine of
    the test fleet holds, so that nothing is left unseen on a later page."""
    body = api.get(f"/api/v1/hosts/{host_id}/containers/", {"page_size": MAX_PAGE_SIZE}).json()
    assert body["next"] is None, body["count"]
    return {c["id"] for c in body["results"]}


def engine_state(fleet_host, container_id: str) -> tuple[str, str, bool]:
    with fleet_host.engine() as engine, engine.errors("Inspecting"):
        raw = engine.api.inspect_container(container_id)
    return raw["Id"], raw["State"]["Status"], raw["State"]["Running"]


@pytest.mark.django_db(transaction=True)
def test_on_a_shared_engine_each_user_sees_and_touches_only_their_own_containers(
    owner, outsider, fleet, images, tmp_path, client,  # noqa: F811
):
    owner_api, outsider_api = api_for(owner), api_for(outsider)
    access.share_image(HELLO, images[HELLO])
    with Engine.for_builds() as source, fleet.plain.engine() as engine:
        # A container the console did not deploy (another tool's, a build's): the owner's host showed it before.
        copy_image(source, engine, HELLO)
        loose = create_container(engine, ContainerSpec(image=HELLO, name="tenancy-loose"))
    mine = owner_api.post("/api/v1/hosts/", {"name": "shared", "url": fleet.plain.url}, format="json").json()
    services.check_host(Host.objects.get(pk=mine["id"]))
    # Alone on the engine, the owner sees every container on it.
    assert loose in container_ids(owner_api, mine["id"])
    try:
        with running_worker(tmp_path, queues=("celery",), concurrency=1) as worker, routed_to(worker):
            first = deploy(owner_api, mine["id"], 8585, "owner")
            assert first["status"] == "succeeded", first
            (target,) = first["targets"]
            victim = target["container_id"]
            before = engine_state(fleet.plain, victim)
            assert before[1:] == ("running", True)

            # The outsider registers the same engine.
            theirs = outsider_api.post("/api/v1/hosts/", {"name": "mine-now", "url": fleet.plain.url},
                                       format="json").json()
            base = f"/api/v1/hosts/{theirs['id']}/containers/"
            assert container_ids(outsider_api, theirs["id"]) == set()
            for path in (f"{victim}/logs/", f"{victim[:12]}/logs/", f"shop-{first['id']}/logs/", f"{loose}/logs/"):
                answer = outsider_api.get(base + path)
                assert answer.status_code == 404, (path, answer.json())
            missing = outsider_api.get(base + "nosuchcontainer/logs/").json()
            refused = outsider_api.get(base + f"{victim}/logs/").json()
            assert refused["detail"] == missing["detail"].replace("nosuchcontainer", victim)
            for verb in ("stop", "restart", "start", "remove"):
                assert outsider_api.post(f"{base}{victim}/{verb}/").status_code == 404
                assert outsider_api.post(f"{base}{loose}/{verb}/").status_code == 404
            client.force_login(outsider)
            assert client.post(f"/hosts/{theirs['id']}/containers/{victim}/stop/").status_code == 404
            page = client.get(f"/hosts/{theirs['id']}/?logs={victim}").content.decode()
            assert victim[:12] not in page.split('id="logs"')[0].split("<table")[1]
            assert "Hello" not in page

            # Now that the engine is shared, the owner sees only what was deployed for them.
            assert container_ids(owner_api, mine["id"]) == {victim}
            assert owner_api.get(f"/api/v1/hosts/{mine['id']}/containers/{loose}/logs/").status_code == 404

            # The outsider deploys an app of the same name on the same port: it fails, the owner's app serves on.
            clash = deploy(outsider_api, theirs["id"], 8585, "outsider")
            assert clash["status"] == "failed"
            assert "port is already allocated" in clash["targets"][0]["error"], clash
            assert engine_state(fleet.plain, victim) == before
            assert http_get(target["url"]) == "Hello owner. Wish you were here.\n"

            # On another port both run; still the owner's container is untouched.
            beside = deploy(outsider_api, theirs["id"], 8586, "outsider")
            assert beside["status"] == "succeeded", beside
            assert engine_state(fleet.plain, victim) == before
            assert http_get(target["url"]) == "Hello owner. Wish you were here.\n"
            assert http_get(beside["targets"][0]["url"]) == "Hello outsider. Wish you were here.\n"
            assert container_ids(outsider_api, theirs["id"]) == {beside["targets"][0]["container_id"]}
            assert container_ids(owner_api, mine["id"]) == {victim}

            # And the owner's next release replaces only the owner's container.
            second = deploy(owner_api, mine["id"], 8585, "owner again")
            assert second["status"] == "succeeded", second
            assert engine_state(fleet.plain, beside["targets"][0]["container_id"])[1] == "running"
    finally:
        remove_app(fleet, "shop")
        with contextlib.suppress(Exception), fleet.plain.engine() as engine, engine.errors("Cleaning up"):
            engine.api.remove_container(loose, force=True)


def _ssh_key() -> str:
    from tests.fixtures.fleet import ssh_key_pair

    return ssh_key_pair()[0]
