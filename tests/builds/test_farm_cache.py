"""The farm's shared build cache, end to end: two build nodes (real engines in their own network namespaces, a
real worker each) and the console's registry (a real Distribution with token auth, on the first node's gateway,
trusting the console's token endpoint on the live server). A repository built on one node is built again on the
other, which never saw it: its dependencies step comes from the cache imported from the registry."""

from __future__ import annotations

import contextlib
import re
import tempfile
import uuid
from pathlib import Path

import jwt
import pytest
import redis
import requests
from django.conf import settings as django_settings

from builds.models import BuildNode
from builds.services import builds as buildservice
from builds.services import nodes, repositories
from builds.services.builds import BuildOptions, trigger_build
from builds.sharedcache import cache_key
from console.accounts.usernames import BUILD_CACHE_NAMESPACE
from console.engine import Engine
from console.engine.transfer import copy_image
from tests.builds.build_helpers import source_from, wait_for_build
from tests.conftest import PASSWORD
from tests.fixtures.fleet import start_fleet
from tests.fixtures.registry import TOKEN_ISSUER, TOKEN_SERVICE, start_distribution
from tests.fixtures.worker import running_worker, wait_for

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]
BASE = "busybox:1.35.0"
DOCKERFILE = f"FROM {BASE}\nRUN sleep 2 && echo dependencies > /deps\nCOPY app.txt /app.txt\nRUN cat /app.txt\n"


@pytest.fixture(scope="module")
def cache_farm(django_db_setup, django_db_blocker, tmp_path_factory, live_server):
    """Two nodes whose engines reach the registry (plain HTTP on the gateway, which BuildKit must be told of)."""
    from registry.tokens import CERT_FILE, ensure_signing_material

    fleet = start_fleet([{"label": "c1"}, {"label": "c2"}])
    suffix = uuid.uuid4().hex[:6]
    with contextlib.ExitStack() as stack:
        stack.callback(fleet.teardown)
        token_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="farm-cache-token-")))
        ensure_signing_material(token_dir)
        realm = f"{live_server.url}/registry/token/"
        auth = {"token": {"realm": realm, "service": TOKEN_SERVICE, "issuer": TOKEN_ISSUER,
                          "rootcertbundle": str(token_dir / CERT_FILE)}}
        registry_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="farm-cache-registry-")))
        server = start_distribution(registry_dir, auth, listen="0.0.0.0")
        stack.callback(server.stop)
        address = f"{fleet.hosts[0].gateway}:{server.address.rsplit(':', 1)[1]}"
        with Engine.for_builds() as main:
            for host in fleet.hosts:
                host.trust_registry(address)
                with host.engine(timeout=120) as engine:
                    copy_image(main, engine, BASE)
        registry_settings = {"REGISTRY_ADDRESS": address, "REGISTRY_TOKEN_REALM": realm,
                             "REGISTRY_SERVICE": TOKEN_SERVICE, "REGISTRY_ISSUER": TOKEN_ISSUER,
                             "REGISTRY_DIR": str(token_dir)}
        workers = {}
        for host in fleet.hosts:
            name = f"cache{suffix}{host.label}"
            env = {"DOCKER_HOST": host.url, "BUILD_NODE_NAME": name, "BUILD_NODE_HEARTBEAT_INTERVAL": "1",
                   "BUILDS_PER_USER": "20", **registry_settings}
            workers[name] = (host, stack.enter_context(running_worker(
                tmp_path_factory.mktemp(name), queues=(f"builds.{name}",), concurrency=1, env=env)))
        yield {"workers": workers, "server": server, "address": address, "settings": registry_settings}
        client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
        for _, worker in workers.values():
            client.delete(*worker.queues.values())


@pytest.fixture
def cache_nodes(cache_farm, settings):
    # The web side (the token endpoint on the live server) signs for the same registry as the workers.
    for name, value in cache_farm["settings"].items():
        setattr(settings, name, Path(value) if name == "REGISTRY_DIR" else value)
    names = list(cache_farm["workers"])

    def registered():
        found = {node.name: node for node in BuildNode.objects.filter(name__in=names)}
        return [found[name] for name in names] if len(found) == 2 and all(
            buildservice.is_available(node) for node in found.values()) else None

    return wait_for(registered, timeout=30, message="both build nodes to register")


def only(node_to_use: BuildNode, nodes_: list[BuildNode]) -> None:
    for node in nodes_:
        nodes.set_drained(node, node.pk != node_to_use.pk)


def manifest_requests(server, repository: str, method: str) -> set[str]:
    """The client addresses that sent `method` for one of the repository's manifests (the registry's access log)."""
    pattern = re.compile(rf'^(\S+) - .*"{method} /v2/{re.escape(repository)}/manifests/\S+ HTTP/[\d.]+" 20[01] ')
    return {match.group(1) for line in server.log().splitlines() if (match := pattern.match(line))}


def log_of(owner_api, build) -> str:
    return "\n".join(owner_api.get(f"/api/v1/builds/{build.pk}/log/").json()["lines"])


def test_a_repository_built_on_one_node_hits_the_cache_on_the_other(cache_nodes, cache_farm, owner, owner_api,
                                                                     live_server):
    first, second = cache_nodes
    repository = repositories.create_repository(owner, "shared-cache", "")
    source = source_from(repository, {"Dockerfile": DOCKERFILE, "app.txt": "one"})

    only(first, cache_nodes)
    built = wait_for_build(trigger_build(owner, source, BuildOptions()), timeout=180)
    assert built.status == "succeeded", built.error
    assert built.node_id == first.pk
    assert [step.cached for step in built.steps.order_by("number")][1:] == [False, False, False]
    cache_repository = f"{BUILD_CACHE_NAMESPACE}/r{repository.pk}"
    # The first build found no cache to import, which failed nothing, and pushed its own.
    log = log_of(owner_api, built)
    assert f"importing cache manifest from {cache_farm['address']}/{cache_repository}:" in log
    assert "No shared cache to import" in log, log
    assert "Shared the build cache with the other build nodes" in log
    first_node_address = cache_farm["workers"][first.name][0].address
    assert first_node_address in manifest_requests(cache_farm["server"], cache_repository, "PUT")

    # A changed file: the dependencies step before it can come from the cache, the steps after it cannot.
    changed = source_from(repository, {"Dockerfile": DOCKERFILE, "app.txt": "two"})
    only(second, cache_nodes)
    again = wait_for_build(trigger_build(owner, changed, BuildOptions()), timeout=180)
    assert again.status == "succeeded", again.error
    assert again.node_id == second.pk
    steps = list(again.steps.order_by("number"))
    assert [step.cached for step in steps][1:] == [True, False, False], [s.instruction for s in steps]
    second_node_address = cache_farm["workers"][second.name][0].address
    assert second_node_address in manifest_requests(cache_farm["server"], cache_repository, "GET")
    log = log_of(owner_api, again)
    assert "No shared cache to import" not in log
    assert "Shared the build cache with the other build nodes" in log
    assert cache_key(again) == cache_key(built)

    # The cache is the console's: its owner's own login is granted nothing on it, pull included.
    answer = requests.get(f"{live_server.url}/registry/token/", auth=(owner.username, PASSWORD),
                          params={"service": TOKEN_SERVICE, "scope": f"repository:{cache_repository}:pull"},
                          timeout=10)
    assert answer.status_code == 200
    assert jwt.decode(answer.json()["token"], options={"verify_signature": False})["access"] == []
