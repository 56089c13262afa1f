"""A deployment that follows a tag, end to end on real components: the console's own registry as the console
writes its config (token auth, notifications to the live server), a push from the real engine, Distribution's real
notification, the event, a real worker following the tag and deploying the pushed digest to a real fleet host,
where the new image answers."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from console.constants import FINAL_STATUSES
from console.engine import Engine
from console.events.models import Event
from fleet.models import Deployment
from registry.services import ensure_console_account
from registry.tokens import Scope, issue_token, namespace_of
from tests.fixtures.registry import TOKEN_ISSUER, TOKEN_SERVICE, DistributionServer, free_port
from tests.fixtures.worker import routed_to, running_worker, wait_for
from tests.fleet.conftest import HEALTHY, HELLO, http_get, register, remove_app

pytestmark = [pytest.mark.engine, pytest.mark.registry, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def followed_registry(fleet, live_server):
    """registry/server.py's config for a registry the fleet reaches on the plain host's gateway; it listens on
    every address so that the main engine pushes to it on 127.0.0.1 (plain HTTP)."""
    from registry.notifications import notification_secret
    from registry.server import notifications_endpoint, token_config
    from registry.tokens import ensure_signing_material

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="registry-follow-") as directory:
        path = Path(directory)
        ensure_signing_material(path)
        text = token_config(path, f"{fleet.plain.gateway}:{port}", f"{live_server.url}/registry/token/",
                            TOKEN_SERVICE, TOKEN_ISSUER,
                            notifications_endpoint(f"{live_server.url}/registry/notifications/",
                                                   notification_secret()))
        config = json.loads(text)
        config["http"]["addr"] = f"0.0.0.0:{port}"
        (path / "config.yml").write_text(json.dumps(config))
        with (path / "registry.log").open("wb") as log:
            process = subprocess.Popen(["docker-registry", "serve", str(path / "config.yml")], stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        server = DistributionServer(path, f"127.0.0.1:{port}", process)
        try:
            wait_for(lambda: _answers(server), timeout=20, message="the registry to answer")
            yield {"server": server, "address": f"{fleet.plain.gateway}:{port}", "push_address": server.address,
                   "dir": path}
        finally:
            server.stop()


def _answers(server: DistributionServer) -> bool:
    assert server.process.poll() is None, server.log()
    try:
        return requests.get(f"{server.url}/v2/", timeout=1).status_code == 401
    except requests.ConnectionError:
        return False


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory, followed_registry):
    env = {"REGISTRY_ADDRESS": followed_registry["address"], "REGISTRY_SERVICE": TOKEN_SERVICE,
           "REGISTRY_ISSUER": TOKEN_ISSUER, "REGISTRY_DIR": str(followed_registry["dir"])}
    with running_worker(tmp_path_factory.mktemp("worker"), queues=("celery",), env=env) as running:
        yield running


@pytest.fixture
def configured(settings, followed_registry, worker):
    settings.REGISTRY_ADDRESS = followed_registry["address"]
    settings.REGISTRY_SERVICE = TOKEN_SERVICE
    settings.REGISTRY_ISSUER = TOKEN_ISSUER
    settings.REGISTRY_DIR = followed_registry["dir"]
    with routed_to(worker):
        yield followed_registry


def push(registry: dict, owner, image_id: str, repository: str, tag: str) -> str:
    """Push from the main engine with a token for the repository; the registry's digest."""
    token = issue_token(owner, TOKEN_SERVICE, [Scope("repository", repository, frozenset({"push", "pull"}))])
    target = f"{registry['push_address']}/{repository}"
    digest = ""
    with Engine.for_builds() as engine, engine.errors("Pushing the test image"):
        engine.api.tag(image_id, target, tag)
        try:
            for event in engine.api.push(target, tag=tag, stream=True, decode=True,
                                         auth_config={"registrytoken": token["token"]}):
                assert "error" not in event, event
                digest = (event.get("aux") or {}).get("Digest", digest)
        finally:
            engine.api.remove_image(f"{target}:{tag}")
    assert digest.startswith("sha256:")
    return digest


def finished(deployment_id: int, worker, timeout: float = 120) -> Deployment:
    def done():
        deployment = Deployment.objects.get(pk=deployment_id)
        return deployment if deployment.status in FINAL_STATUSES else None
    try:
        return wait_for(done, timeout=timeout, message="the deployment to end")
    except AssertionError:
        raise AssertionError(worker.output()[-3000:]) from None


def test_a_push_to_the_followed_tag_redeploys_the_host_by_digest(owner, owner_api, fleet, images, configured,
                                                                 worker):
    registry = configured
    host = register(owner, fleet.plain)
    repository, tag = f"{namespace_of(owner)}/follow-{uuid.uuid4().hex[:6]}", "live"
    name = f"follow-{uuid.uuid4().hex[:6]}"
    first_digest = push(registry, owner, images[HELLO], repository, tag)
    wait_for(lambda: Event.objects.filter(kind="image.pushed", repository=repository).exists(), timeout=30,
             message="the first push's event")
    try:
        answer = owner_api.post("/api/v1/deployments/", {
            "name": name, "image": f"{registry['address']}/{repository}:{tag}", "hosts": [host.pk],
            "registry": ensure_console_account(owner).pk, "ports": {"8080/tcp": 8491}, "env": {"WHO": "follower"},
            "follow_tag": f"{repository}:{tag}"}, format="json")
        assert answer.status_code == 202, answer.json()
        first = finished(answer.json()["id"], worker)
        assert first.status == "succeeded", first.error
        assert first.image_digest == f"{registry['address']}/{repository}@{first_digest}"

        second_digest = push(registry, owner, images[HEALTHY], repository, tag)
        assert second_digest != first_digest
        [event] = wait_for(lambda: list(Event.objects.filter(kind="image.pushed", repository=repository,
                                                             data__digest=second_digest)), timeout=30,
                           message="the second push's event")
        release = wait_for(lambda: Deployment.objects.filter(name=name, trigger__event=event.pk).first(),
                           timeout=60, message="the followed release")
        release = finished(release.pk, worker)
        assert release.status == "succeeded", release.error
        assert release.image == f"{registry['address']}/{repository}@{second_digest}"
        assert release.image_digest.endswith(f"@{second_digest}")
        assert release.trigger["digest"] == second_digest and release.trigger["approved_by"] is None
        assert release.follow_tag == f"{repository}:{tag}" and release.env == {"WHO": "follower"}
        [target] = release.targets.all()
        with fleet.plain.engine() as engine:
            assert engine.api.inspect_container(target.container_id)["Image"] == images[HEALTHY]
        assert http_get(target.url) == "Hello follower. Wish you were here.\n"
        # Exactly one release for the push: Distribution's retries and the event's listener add none.
        time.sleep(2)
        assert Deployment.objects.filter(name=name).count() == 2
    finally:
        remove_app(fleet, name)
        with fleet.plain.engine() as engine, engine.errors("Cleaning up"):
            for image_id in (images[HELLO], images[HEALTHY]):
                for reference in engine.api.inspect_image(image_id).get("RepoDigests", []) \
                        if engine.image_exists(image_id) else []:
                    engine.api.remove_image(reference)
