"""Deployments that pull from a registry with stored credentials, through a real worker, to the real fleet:
the console's own registry (token auth: each host gets a token signed for just this repository) and a registry
with Basic auth (an account's username and password; a wrong password fails every target, saying so).

The registries listen on every address: the main engine pushes to them on 127.0.0.1 (which it treats as plain
HTTP), the fleet's engines pull from the plain host's gateway (inside --insecure-registry 10.203.0.0/16).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

import pytest

from console.constants import FINAL_STATUSES
from fleet.models import Deployment
from registry.constants import RegistryKind
from registry.models import RegistryAccount
from registry.services import ensure_console_account
from registry.tokens import CERT_FILE, Scope, ensure_signing_material, issue_token, namespace_of
from tests.fixtures.registry import (
    REGISTRY_USER,
    TOKEN_ISSUER,
    TOKEN_SERVICE,
    GatewayRegistry,
    gateway_basic_registry,
    push_image,
    start_distribution,
)
from tests.fixtures.worker import routed_to, running_worker
from tests.fleet.conftest import HELLO, http_get, remove_app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def token_dir():
    with tempfile.TemporaryDirectory(prefix="fleet-registry-token-") as directory:
        ensure_signing_material(Path(directory))
        yield Path(directory)


@pytest.fixture(scope="module")
def console_registry(fleet, token_dir):
    """The console's own registry: token auth with the console's signing certificate."""
    # The realm is never asked here (the console hands each engine a token it signed itself), so it need not be
    # reachable from the fleet.
    auth = {"token": {"realm": "http://127.0.0.1:9/registry/token/", "service": TOKEN_SERVICE,
                      "issuer": TOKEN_ISSUER, "rootcertbundle": str(token_dir / CERT_FILE)}}
    with tempfile.TemporaryDirectory(prefix="fleet-registry-console-") as directory:
        server = start_distribution(Path(directory), auth, listen="0.0.0.0")
        try:
            yield GatewayRegistry(server, fleet.plain.gateway)
        finally:
            server.stop()


@pytest.fixture(scope="module")
def basic_registry(fleet):
    with gateway_basic_registry(fleet.plain.gateway, prefix="fleet-registry-basic-") as registry:
        yield registry


@pytest.fixture(scope="module")
def registry_settings(console_registry, token_dir) -> dict[str, str]:
    return {"REGISTRY_ADDRESS": console_registry.address, "REGISTRY_SERVICE": TOKEN_SERVICE,
            "REGISTRY_ISSUER": TOKEN_ISSUER, "REGISTRY_DIR": str(token_dir)}


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory, registry_settings):
    """One worker for the module, configured for the console's registry as the web side is (see `configured`)."""
    with running_worker(tmp_path_factory.mktemp("worker"), queues=("celery",), env=registry_settings) as worker:
        yield worker


@pytest.fixture
def configured(settings, registry_settings):
    for name, value in registry_settings.items():
        setattr(settings, name, Path(value) if name == "REGISTRY_DIR" else value)


# The fleet's tests push as the swarm's do.
push = push_image


def deploy(api, worker, **body) -> dict:
    with routed_to(worker):
        answer = api.post("/api/v1/deployments/", body, format="json")
    assert answer.status_code == 202, answer.json()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        current = api.get(f"/api/v1/deployments/{answer.json()['id']}/").json()
        if current["status"] in FINAL_STATUSES:
            return current
        time.sleep(0.3)
    raise AssertionError(f"the deployment did not finish: {current}\n{worker.output()[-3000:]}")


def remove_image(fleet, reference: str) -> None:
    for fleet_host in fleet:
        with fleet_host.engine() as engine, engine.errors("Cleaning up"):
            if engine.image_exists(reference):
                engine.api.remove_image(engine.api.inspect_image(reference)["Id"], force=True)


def has_image(fleet_host, reference: str) -> bool:
    with fleet_host.engine() as engine:
        return engine.image_exists(reference)


def test_it_pulls_from_the_consoles_registry_on_every_host_with_a_scoped_token(
    owner, owner_api, hosts, images, fleet, console_registry, worker, configured
):
    account = ensure_console_account(owner)
    repository, tag = f"{namespace_of(owner)}/fleet-hello", uuid.uuid4().hex[:8]
    token = issue_token(owner, TOKEN_SERVICE, [Scope("repository", repository, frozenset({"push", "pull"}))])
    push(console_registry, images[HELLO], repository, tag, {"registrytoken": token["token"]})
    reference = f"{console_registry.address}/{repository}:{tag}"
    assert not any(has_image(fleet_host, reference) for fleet_host in fleet)
    try:
        body = deploy(owner_api, worker, image=reference, registry=account.pk, hosts=[host.pk for host in hosts],
                      name="from-console", ports={"8080/tcp": 8484}, env={"WHO": "the registry"})

        assert body["status"] == "succeeded", body
        assert {target["host_name"]: http_get(target["url"]) for target in body["targets"]} == {
            name: "Hello the registry. Wish you were here.\n" for name in ("plain", "tls", "vfs")}
        # Each engine fetched the manifest itself, from its own address.
        assert console_registry.pulls_of(repository) == {fleet_host.address for fleet_host in fleet}
        assert all(has_image(fleet_host, reference) for fleet_host in fleet)
        lines = owner_api.get(f"/api/v1/deployments/{body['id']}/log/").json()["lines"]
        for name in ("plain", "tls", "vfs"):
            assert f"[{name}] pulling {reference} with the credentials of registry account console" in lines
        deployment = Deployment.objects.get(pk=body["id"])
        assert deployment.image_digest.startswith(f"{console_registry.address}/{repository}@sha256:")
        assert token["token"] not in "\n".join(lines)
    finally:
        remove_app(fleet, "from-console")
        remove_image(fleet, reference)


def test_it_pulls_with_an_accounts_password_and_a_wrong_one_fails_every_host(
    owner, owner_api, hosts, images, fleet, basic_registry, worker
):
    repository, tag = "team/fleet-hello", uuid.uuid4().hex[:8]
    push(basic_registry, images[HELLO], repository, tag, {"username": basic_registry.server.username,
                                                          "password": basic_registry.server.password,
                                                          "serveraddress": basic_registry.push_address})
    reference = f"{basic_registry.address}/{repository}:{tag}"
    account = RegistryAccount.objects.create(owner=owner, name="team", kind=RegistryKind.GENERIC,
                                             url=f"http://{basic_registry.address}", username=REGISTRY_USER,
                                             secret="not-the-password")
    request = {"image": reference, "registry": account.pk, "hosts": [host.pk for host in hosts],
               "name": "from-team", "ports": {"8080/tcp": 8485}, "env": {"WHO": "the team"}}
    try:
        refused = deploy(owner_api, worker, **request)

        assert refused["status"] == "failed"
        urls = {fleet_host.label: fleet_host.url for fleet_host in fleet}
        assert sorted(target["host_name"] for target in refused["targets"]) == sorted(urls)
        for target in refused["targets"]:
            assert (target["status"], target["error"]) == (
                "failed", f"the registry refused the credentials of registry account team: Pulling {reference} on "
                          f"{urls[target['host_name']]}: unauthorized: authentication required")
        assert not any(has_image(fleet_host, reference) for fleet_host in fleet)
        assert not basic_registry.pulls_of(repository)

        account.secret = basic_registry.server.password
        account.save()
        pulled = deploy(owner_api, worker, **request)

        assert pulled["status"] == "succeeded", pulled
        assert {http_get(target["url"]) for target in pulled["targets"]} == {"Hello the team. Wish you were here.\n"}
        assert basic_registry.pulls_of(repository) == {fleet_host.address for fleet_host in fleet}
        lines = owner_api.get(f"/api/v1/deployments/{pulled['id']}/log/").json()["lines"]
        assert basic_registry.server.password not in "\n".join(lines)
    finally:
        remove_app(fleet, "from-team")
        remove_image(fleet, reference)
