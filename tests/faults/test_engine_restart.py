"""The build engine restarted in the middle of a build (`RUN sleep`): the build ends failed with a readable reason,
nothing of it stays on the engine, and the engine builds again afterwards.

This cannot be done to the machine's main engine (every test shares it): the build engine here is an engine of
its own (tests/fixtures/fleet.py, in a network namespace) that the worker is bound to by DOCKER_HOST, with the
busybox base image copied onto it from the main engine.
"""

from __future__ import annotations

import pytest

from builds.models import Repository
from console.constants import JobStatus
from console.engine import Engine
from console.engine.transfer import copy_image
from tests.builds.build_helpers import source_from, wait_for_build
from tests.fixtures.fleet import start_fleet
from tests.fixtures.worker import routed_to, running_worker, wait_for

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def build_engine():
    fleet = start_fleet([{"label": "builder"}])
    try:
        host = fleet.hosts[0]
        with Engine.for_builds() as main, host.engine() as target:
            copy_image(main, target, "busybox:1.35.0")
        yield host
    finally:
        fleet.teardown()


def containers(host) -> list[dict]:
    with host.engine() as engine:
        return engine.api.containers(all=True)


@pytest.mark.parametrize("builder", ["classic", "buildkit"])
def test_a_build_fails_cleanly_when_its_engine_restarts(owner, build_engine, tmp_path, builder):
    from builds.services import builds as buildservice
    from console import jobs

    repository = Repository.objects.create(owner=owner, name="restart")
    source = source_from(repository, {"Dockerfile": "FROM busybox:1.35.0\nRUN echo sleeping-now && sleep 60\n"})
    with running_worker(tmp_path, env={"DOCKER_HOST": build_engine.url}) as worker, routed_to(worker):
        build = buildservice.trigger_build(owner, source, buildservice.BuildOptions(no_cache=True, builder=builder))
        if builder == "classic":
            # This engine is the test's own: any container on it is the build's RUN step.
            wait_for(lambda: containers(build_engine), timeout=60, message="the RUN step's container")
        else:
            wait_for(lambda: "sleeping-now" in jobs.log_text(build), timeout=60, message="the RUN step to start")
        build_engine.stop()
        build_engine.start()
        build = wait_for_build(build, timeout=90)
        output = worker.output()
    assert build.status == JobStatus.FAILED, output[-3000:]
    assert build.error and "Traceback" not in build.error
    # Nothing of the build stays on the engine once it is back: no intermediate container.
    wait_for(lambda: not containers(build_engine), timeout=30, message="no container left on the engine")
    # And the engine builds again.
    with running_worker(tmp_path, env={"DOCKER_HOST": build_engine.url}) as worker, routed_to(worker):
        again = buildservice.trigger_build(owner, source_from(repository, {"Dockerfile": "FROM busybox:1.35.0\n"
                                                                                        "RUN echo fine\n"}),
                                           buildservice.BuildOptions())
        assert wait_for_build(again, timeout=90).status == JobStatus.SUCCEEDED
