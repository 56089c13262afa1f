"""A deployment says what is so, on real engines: `succeeded` means the app's container runs and its published
ports answer on the host's address; a deployment is final only when each of its targets is; and clean-up touches
only what the deployment made: never a newer release's container, never another console's."""

from __future__ import annotations

import os
import time

import pytest
from django.utils import timezone

from console import jobs
from console.constants import JobStatus
from console.engine import containers as engine_containers
from fleet import services
from fleet.constants import LABEL_CONSOLE, LABEL_DEPLOYMENT, LABEL_MANAGED, LABEL_NAME, LABEL_OWNER, LABEL_TARGET
from fleet.instance import console_mark
from fleet.models import Deployment, DeploymentTarget
from tests.fleet.conftest import HELLO, SILENT, http_get, register, remove_app

pytestmark = pytest.mark.django_db(transaction=True)

# `CONSOLE_DEPLOY_ROUNDS=20` runs the back-to-back deployment twenty times (issue 17's "done when").
ROUNDS = int(os.environ.get("CONSOLE_DEPLOY_ROUNDS", "3"))
GREETING = "Hello {who}. Wish you were here.\n"


@pytest.fixture
def no_queue(monkeypatch):
    """Deployments run here by calling the task's body; nothing goes to the broker."""
    monkeypatch.setattr("fleet.services.deployments._enqueue_deployment", lambda deployment: None)


def create(owner, hosts, name: str, port: int, who: str, image: str = HELLO) -> Deployment:
    return services.create_deployment(owner, {
        "name": name, "image": image, "hosts": [host.pk for host in hosts], "ports": {"8080/tcp": port},
        "env": {"WHO": who},
    })


def run(deployment: Deployment) -> Deployment:
    services.run_deployment(deployment.pk)
    deployment.refresh_from_db()
    return deployment


def containers_of(fleet_host, name: str) -> dict[str, str]:
    """{container name: state} of the app `name` on one engine, whoever made them."""
    with fleet_host.engine() as engine:
        return {c["name"]: c["state"] for c in engine_containers.list_containers(engine, labels={LABEL_NAME: name})}


def test_a_two_host_deployment_back_to_back_serves_on_both_hosts(owner, fleet, images, no_queue):
    """Each round replaces the last on both hosts; seconds after `succeeded`, each host runs exactly the new
    container and it answers, and the target's log says its port answered before it said so."""
    hosts = [register(owner, fleet.plain), register(owner, fleet.tls)]
    engines = {host.name: fleet_host for host, fleet_host in zip(hosts, [fleet.plain, fleet.tls], strict=True)}
    try:
        for round_ in range(ROUNDS):
            deployment = run(create(owner, hosts, "pair", 8383, who=f"round {round_}"))
            assert deployment.status == JobStatus.SUCCEEDED, deployment.error
            log = jobs.log_text(deployment)
            time.sleep(2)
            for target in deployment.targets.select_related("host"):
                assert target.status == JobStatus.SUCCEEDED
                assert f"[{target.host_name}] port 8383 on {target.host.address} accepts connections" in log
                assert containers_of(engines[target.host_name], "pair") == {f"pair-{deployment.pk}": "running"}
                assert http_get(target.url) == GREETING.format(who=f"round {round_}")
    finally:
        remove_app(fleet, "pair")


def test_a_container_that_runs_but_does_not_answer_on_its_port_is_no_success(owner, fleet, images, no_queue,
                                                                               monkeypatch):
    monkeypatch.setattr("fleet.services.deployer.PORT_GRACE_SECONDS", 4)
    host = register(owner, fleet.plain)
    try:
        first = run(create(owner, [host], "quiet", 8484, who="first"))
        assert first.status == JobStatus.SUCCEEDED, first.error

        silent = run(create(owner, [host], "quiet", 8484, who="silent", image=SILENT))

        assert silent.status == JobStatus.FAILED
        target = silent.targets.get()
        assert target.status == JobStatus.FAILED
        assert target.error.startswith(f"port 8484 on {host.address} accepted no connection within 4 seconds")
        assert f"the previous container (quiet-{first.pk}) keeps serving" in target.error
        assert http_get(first.targets.get().url) == GREETING.format(who="first")
        assert containers_of(fleet.plain, "quiet") == {f"quiet-{first.pk}": "running"}
    finally:
        remove_app(fleet, "quiet")


def test_a_stale_deployment_never_removes_the_newer_release(owner, fleet, images, no_queue):
    """A deployment that ended `failed` while its target still said `running`, its half-made container left on
    the host; then a new release of the same name there. The periodic clean-up fails the stale target and removes
    what it made, and the new release's container serves on."""
    host = register(owner, fleet.plain)
    try:
        first = run(create(owner, [host], "stale", 8585, who="first"))
        assert first.status == JobStatus.SUCCEEDED, first.error
        stale = create(owner, [host], "stale", 8585, who="stale")
        stale_target = stale.targets.get()
        with fleet.plain.engine() as engine:
            half_made = engine_containers.create_container(engine, engine_containers.ContainerSpec(
                image=first.image_id, name=f"stale-{stale.pk}", ports={"8080/tcp": 8585},
                labels={LABEL_MANAGED: "true", LABEL_NAME: "stale", LABEL_OWNER: str(owner.pk),
                        LABEL_DEPLOYMENT: str(stale.pk), LABEL_TARGET: str(stale_target.pk),
                        LABEL_CONSOLE: console_mark()},
            ))
        Deployment.objects.filter(pk=stale.pk).update(status=JobStatus.FAILED, finished_at=timezone.now(),
                                                      error="The deployment stopped unexpectedly.")
        DeploymentTarget.objects.filter(pk=stale_target.pk).update(status=JobStatus.RUNNING, container_id=half_made,
                                                                   step="starting")

        newer = run(create(owner, [host], "stale", 8585, who="newer"))
        assert newer.status == JobStatus.SUCCEEDED, newer.error
        services.reap_lost_deployments()

        stale_target.refresh_from_db()
        assert (stale_target.status, stale_target.error) == (
            JobStatus.FAILED, "the deployment ended before this host finished")
        assert containers_of(fleet.plain, "stale") == {f"stale-{newer.pk}": "running"}
        assert http_get(newer.targets.get().url) == GREETING.format(who="newer")
        # Nothing of the newer release was touched: the clean-up's log names only the stale container, if any.
        assert f"stale-{newer.pk}" not in jobs.log_text(stale)
        assert services.reap_lost_deployments() == []
    finally:
        remove_app(fleet, "stale")


def test_another_consoles_app_with_the_same_name_and_ids_is_left_alone(owner, fleet, images, no_queue):
    """Two consoles deploying to one engine number their users and deployments alike: the other console's
    container carries this deployment's very owner, name, deployment and target labels and the name it would
    take. It is neither removed as an earlier attempt nor replaced as an old release, and it serves on."""
    host = register(owner, fleet.plain)
    try:
        first = run(create(owner, [host], "twin", 8686, who="ours"))
        assert first.status == JobStatus.SUCCEEDED, first.error
        ours = create(owner, [host], "twin", 8686, who="ours again")
        with fleet.plain.engine() as engine:
            theirs = engine_containers.create_container(engine, engine_containers.ContainerSpec(
                image=first.image_id, name=f"twin-{ours.pk}", ports={"8080/tcp": 8687}, env={"WHO": "theirs"},
                labels={LABEL_MANAGED: "true", LABEL_NAME: "twin", LABEL_OWNER: str(owner.pk),
                        LABEL_DEPLOYMENT: str(ours.pk), LABEL_TARGET: str(ours.targets.get().pk),
                        LABEL_CONSOLE: "0123456789abcdef"},
            ))
            engine_containers.act_on_container(engine, theirs, "start")

        ours = run(ours)

        assert ours.status == JobStatus.SUCCEEDED, ours.error
        target = ours.targets.get()
        assert http_get(target.url) == GREETING.format(who="ours again")
        assert http_get(f"http://{host.address}:8687/") == GREETING.format(who="theirs")
        assert containers_of(fleet.plain, "twin") == {
            f"twin-{ours.pk}": "running", f"twin-{ours.pk}-{console_mark()[:8]}": "running"}
        with fleet.plain.engine() as engine:
            assert engine_containers.get_container(engine, target.container_id)["name"] == (
                f"twin-{ours.pk}-{console_mark()[:8]}")
    finally:
        remove_app(fleet, "twin")
