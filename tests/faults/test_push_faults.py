"""A push that loses its worker or its registry half-way ends `failed` with a reason, and leaves no temporary name
on the build engine. Real registry (Distribution), real engine, a real worker killed with SIGKILL."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from console.constants import JobStatus
from console.engine import Engine
from registry import services
from registry.models import RegistryAccount
from tests.faults.proxy import ManifestHookProxy
from tests.fixtures.registry import start_distribution
from tests.fixtures.worker import routed_to, running_worker, wait_for
from tests.registry.helpers import unique_image  # noqa: F401  (fixture)

pytestmark = pytest.mark.engine


@pytest.fixture
def registry(tmp_path: Path):
    server = start_distribution(tmp_path)
    yield server
    server.stop()


def account(owner, proxy: ManifestHookProxy) -> RegistryAccount:
    return RegistryAccount.objects.create(owner=owner, name="lab", kind="generic", url=f"http://{proxy.address}")


def has_name(reference: str) -> bool:
    with Engine.for_builds() as engine:
        return engine.image_exists(reference)


@pytest.mark.django_db(transaction=True)
def test_the_worker_killed_during_a_push_leaves_it_failed_by_the_reaper(owner, registry, unique_image, tmp_path):  # noqa: F811
    reached, release = threading.Event(), threading.Event()
    proxy = ManifestHookProxy(registry.address, lambda: (reached.set(), release.wait(30)))
    target = f"{proxy.address}/team/app:1"
    try:
        with running_worker(tmp_path, queues=("celery",), concurrency=1) as worker, routed_to(worker):
            push = services.trigger_push(owner, unique_image, account(owner, proxy), "team/app", "1")
            assert reached.wait(60), worker.output()[-2000:]
            push.refresh_from_db()
            assert push.status == JobStatus.RUNNING and has_name(target)
            # A push whose worker still beats is not touched by the reaper.
            assert services.reap_lost_transfers() == []
            worker.kill()
            release.set()
    finally:
        release.set()
        proxy.close()
    push.refresh_from_db()
    assert push.status == JobStatus.RUNNING
    # The periodic reaper (every 30 s, BUILD_HEARTBEAT_TIMEOUT) with a short horizon, so the test need not wait.
    reaped = wait_for(lambda: services.reap_lost_transfers(older_than=timedelta(seconds=1)), timeout=10,
                      message="the reaper to fail the push")
    assert reaped == [f"push #{push.pk}"]
    push.refresh_from_db()
    assert push.status == JobStatus.FAILED and push.finished_at is not None
    assert push.error == "The worker running this push was lost (no heartbeat); start it again."
    assert "error: The worker running this push was lost" in services.jobs.log_text(push)
    # Nothing left behind: the name made to push with is gone, the image itself stays; a second reap is a no-op.
    assert not has_name(target) and has_name(unique_image)
    assert services.reap_lost_transfers(older_than=timedelta(seconds=1)) == []


@pytest.mark.django_db
def test_the_registry_stopped_during_a_push_fails_it_with_the_reason(owner, registry, unique_image):  # noqa: F811
    proxy = ManifestHookProxy(registry.address, registry.stop)
    try:
        push = services.trigger_push(owner, unique_image, account(owner, proxy), "team/app", "2")
        started = time.monotonic()
        services.run_push(push.pk)
    finally:
        proxy.close()
    push.refresh_from_db()
    assert proxy.manifests == 1 and registry.process.poll() is not None
    assert push.status == JobStatus.FAILED, push.error
    # The engine's words, through the console's: readable, no traceback.
    assert push.error and "Traceback" not in push.error
    assert f"error: {push.error}" in services.jobs.log_text(push)
    assert all(layer["status"] in ("Pushed", "Layer already exists") for layer in push.layers)
    assert not has_name(f"{proxy.address}/team/app:2") and has_name(unique_image)
    assert time.monotonic() - started < 60
