"""A deployment that loses its worker or one of its hosts half-way ends in a clear state: the deployment and the
unfinished targets `failed` with the reason, nothing stays `running`, and no half-made container of it keeps
running on a host. Real engines (tests/fixtures/fleet.py, in network namespaces), a real Celery worker killed with
SIGKILL, a host's engine stopped with its container half-deployed.

The image here becomes healthy only after READY_AFTER seconds (its environment), so each deployment can be caught
in its health wait: the longest step, the one a worker or a host is most likely to be lost in.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from builds.models import Image
from console.constants import FINAL_STATUSES, JobStatus
from console.engine import Engine
from console.engine.containers import list_containers
from fleet import services
from fleet.constants import LABEL_DEPLOYMENT, LABEL_NAME
from fleet.models import Deployment, DeploymentTarget
from tests.fixtures.fleet import start_fleet
from tests.fixtures.worker import routed_to, running_worker, wait_for
from tests.fleet.conftest import http_get, register, remove_app

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

SLOW = "console-test/fleet-slow-start:1"
# Healthy once the page exists, READY_AFTER seconds after the start; failed checks during the start period do not
# count, so until then the health stays `starting` and the deployment waits. The trap makes a stop quick. EXPOSE is
# needed: the console publishes a deployment's ports only where the image exposes them (see the report of issue 8).
DOCKERFILE = """FROM busybox:1.35.0
ENV READY_AFTER=0 WHO=nobody
EXPOSE 8080
HEALTHCHECK --interval=1s --timeout=2s --start-period=300s --retries=1 CMD test -f /tmp/www/index.html
CMD ["sh", "-c", "trap 'exit 0' TERM; sleep \\"$READY_AFTER\\" & wait $!; mkdir -p /tmp/www; \
echo \\"release $WHO\\" > /tmp/www/index.html; exec httpd -f -p 8080 -h /tmp/www"]
"""
WAITING = "waiting until healthy"


@pytest.fixture(scope="module")
def slow_image():
    with Engine.for_builds() as engine, engine.errors("Building the slow image"):
        for event in engine.api.build(fileobj=io.BytesIO(DOCKERFILE.encode()), tag=SLOW, rm=True, decode=True):
            assert "error" not in event, event
    yield SLOW
    with Engine.for_builds() as engine, engine.errors("Cleaning up"):
        engine.api.remove_image(SLOW, force=True)


@pytest.fixture(scope="module")
def engines():
    """Three engines of this module's own: one of them is stopped on purpose, which no other test should see."""
    fleet = start_fleet([{"label": "one"}, {"label": "two"}, {"label": "three"}])
    try:
        yield fleet
    finally:
        fleet.teardown()


def deploy(owner, hosts, name: str, who: str, ready_after: int) -> Deployment:
    # The owner's image (builds/access.py lets a user deploy only images their records hold).
    with Engine.for_builds() as engine:
        image_id = engine.api.inspect_image(SLOW)["Id"]
    Image.objects.get_or_create(owner=owner, image_id=image_id, defaults={"tags": [SLOW]})
    return services.create_deployment(owner, {
        "image": SLOW, "hosts": [host.pk for host in hosts], "name": name, "ports": {"8080/tcp": 8080},
        "env": {"WHO": who, "READY_AFTER": str(ready_after)},
    })


def final(deployment: Deployment, timeout: float = 90) -> Deployment:
    wait_for(lambda: Deployment.objects.get(pk=deployment.pk).status in FINAL_STATUSES, timeout=timeout,
             message=f"deployment #{deployment.pk} to end")
    return Deployment.objects.get(pk=deployment.pk)


def steps(deployment: Deployment) -> dict[str, str]:
    return dict(DeploymentTarget.objects.filter(deployment=deployment).values_list("host_name", "step"))


def app_containers(fleet_host, name: str) -> dict[str, dict]:
    """The app's containers on one engine, by the id of the deployment that made them."""
    with fleet_host.engine() as engine:
        return {c["labels"][LABEL_DEPLOYMENT]: c for c in list_containers(engine, labels={LABEL_NAME: name})}


def answer(url: str) -> str:
    """What the app answers, or "" while it does not (a container just started needs a moment)."""
    try:
        return http_get(url, timeout=2)
    except OSError:
        return ""


def test_the_worker_killed_during_a_deployment_leaves_it_failed_and_the_previous_release_serving(
    owner, engines, slow_image, tmp_path
):
    one, two, _ = engines.hosts
    hosts = [register(owner, one), register(owner, two)]
    try:
        with running_worker(tmp_path, queues=("celery",), concurrency=1) as worker, routed_to(worker):
            first = final(deploy(owner, hosts, "reaped", "one", ready_after=0))
            assert first.status == JobStatus.SUCCEEDED, (first.error, worker.output()[-2000:])
            for fleet_host in (one, two):
                assert http_get(f"http://{fleet_host.address}:8080/") == "release one\n"
            second = deploy(owner, hosts, "reaped", "two", ready_after=600)
            # Both hosts are in the health wait: the new containers run, the old ones were stopped for the port.
            wait_for(lambda: set(steps(second).values()) == {WAITING}, timeout=60, message="the health wait")
            worker.kill()
        second.refresh_from_db()
        assert second.status == JobStatus.RUNNING
        for fleet_host in (one, two):
            assert app_containers(fleet_host, "reaped")[str(second.pk)]["state"] == "running"

        assert services.reap_lost_deployments(older_than=timedelta(0)) == [second.pk]

        second.refresh_from_db()
        assert (second.status, second.error) == (JobStatus.FAILED, services.LOST_WORKER)
        assert second.finished_at is not None
        for target in second.targets.all():
            assert (target.status, target.error, target.step) == (
                JobStatus.FAILED, "the worker was lost before this host finished", "")
        # Nothing left behind: the half-made container is gone, and the release it was replacing serves again.
        for fleet_host in (one, two):
            containers = app_containers(fleet_host, "reaped")
            assert set(containers) == {str(first.pk)}, containers
            assert containers[str(first.pk)]["state"] == "running"
            wait_for(lambda fleet_host=fleet_host: answer(f"http://{fleet_host.address}:8080/") == "release one\n",
                     timeout=10, message=f"release one to serve again on {fleet_host.label}")
        assert services.reap_lost_deployments(older_than=timedelta(0)) == []
        # The name is free again: the next deployment of the app is not blocked by the lost one.
        assert not Deployment.objects.filter(name="reaped", status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
    finally:
        remove_app(engines, "reaped")


def test_a_host_stopped_during_a_deployment_fails_alone_and_the_others_finish(owner, engines, slow_image, tmp_path):
    one, two, three = engines.hosts
    hosts = [register(owner, fleet_host) for fleet_host in engines]
    try:
        with running_worker(tmp_path, queues=("celery",), concurrency=1) as worker, routed_to(worker):
            deployment = deploy(owner, hosts, "survivor", "all", ready_after=5)
            wait_for(lambda: steps(deployment).get("three") == WAITING, timeout=60, message="the health wait")
            three.stop()
            deployment = final(deployment)
            output = worker.output()
        targets = {target.host_name: target for target in deployment.targets.all()}
        assert deployment.status == JobStatus.FAILED, output[-2000:]
        assert targets["three"].status == JobStatus.FAILED
        # Which one the run sees first depends on the engine's shutdown: its API gone, or the container it stopped.
        error = targets["three"].error
        assert (f"the Docker Engine at {three.url} does not answer" in error
                or error.startswith("the container exited with code")), services.jobs.log_text(deployment)
        assert "Traceback" not in error
        assert deployment.error == f"1 of 3 host(s) failed: three: {targets['three'].error}"
        for name, fleet_host in (("one", one), ("two", two)):
            assert targets[name].status == JobStatus.SUCCEEDED, targets[name].error
            assert targets[name].url == f"http://{fleet_host.address}:8080/"
            assert http_get(targets[name].url) == "release all\n"
        assert not DeploymentTarget.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
        assert services.reap_lost_deployments(older_than=timedelta(0)) == []
        # The engine comes back with nothing of the deployment running on it (its container stopped with it).
        three.start()
        left = app_containers(three, "survivor")
        assert all(container["state"] != "running" for container in left.values()), left
    finally:
        three.start()
        remove_app(engines, "survivor")
