"""Load: 20 builds queued at once by 5 users, run by 2 real workers (concurrency 1 each) on the real engine.

All finish, none is lost (each ran exactly once), and BUILDS_PER_USER (2, which the workers read from their own
environment) holds at every moment sampled while they run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections

from builds.models import Build, Repository
from builds.services import builds as buildservice
from builds.services.builds import BuildOptions
from console.constants import JobStatus
from tests.builds.build_helpers import remove_images, source_from
from tests.fixtures.worker import ROOT, Worker, _wait_until_ready, database_url, routed_to, wait_for

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

# The first user queues 8 builds at once, the four others 3 each: 20 in all.
USERS, BUILDS, PER_USER = 5, [8, 3, 3, 3, 3], 2
DOCKERFILE = "FROM busybox:1.35.0\nARG N\nRUN echo \"load build $N\" > /n\n"


@contextlib.contextmanager
def shared_workers(tmp_path: Path, count: int, env: dict[str, str]) -> Iterator[list[Worker]]:
    """`count` workers of concurrency 1 consuming the SAME private queues (tests/fixtures/worker.py gives each
    worker its own), so that builds spread over them as over the workers of an installation."""
    suffix = uuid.uuid4().hex[:8]
    queues = {"celery": f"celery-{suffix}", "builds": f"builds-{suffix}"}
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url(),
                   "CELERY_BROKER_URL": settings.CELERY_BROKER_URL, "CELERY_DEFAULT_QUEUE": queues["celery"],
                   "BUILDS_QUEUE": queues["builds"], **env}
    workers: list[Worker] = []
    try:
        for index in range(count):
            name = f"load{index}-{suffix}@{os.uname().nodename}"
            path = tmp_path / f"worker-{index}.log"
            with path.open("wb") as output:
                process = subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "console", "worker", "-Q", ",".join(queues.values()),
                     "--concurrency=1", "--without-gossip", "--without-mingle", "--loglevel=INFO", "-n", name],
                    cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
                )
            workers.append(Worker(process, name, queues, path))
        for worker in workers:
            _wait_until_ready(worker)
        yield workers
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                os.killpg(worker.process.pid, signal.SIGTERM)
        for worker in workers:
            try:
                worker.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()


class Sampler(threading.Thread):
    """Every 50 ms, on its own database connection until stopped: per user, the builds running, and those
    running or handed to the broker (what BUILDS_PER_USER limits)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.running: list[Counter] = []
        self.placed: list[Counter] = []

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                rows = list(Build.objects.filter(status__in=(JobStatus.RUNNING, JobStatus.QUEUED))
                            .values_list("owner_id", "status", "task_id"))
                self.running.append(Counter(owner for owner, status, _ in rows if status == JobStatus.RUNNING))
                self.placed.append(Counter(owner for owner, status, task in rows
                                           if status == JobStatus.RUNNING or task))
                time.sleep(0.05)
        finally:
            connections.close_all()


def test_twenty_builds_of_five_users_on_two_workers(tmp_path):
    users = [get_user_model().objects.create_user(f"load{n}", f"load{n}@example.com", "x" * 20)
             for n in range(USERS)]
    sources = {user.pk: source_from(Repository.objects.create(owner=user, name="load"), {"Dockerfile": DOCKERFILE})
               for user in users}
    sampler = Sampler()
    builds: list[Build] = []
    try:
        with shared_workers(tmp_path, 2, {"BUILDS_PER_USER": str(PER_USER)}) as workers, routed_to(workers[0]):
            sampler.start()
            # Queued at once: the first user's eight, then the others'.
            for user, count in zip(users, BUILDS, strict=True):
                for n in range(count):
                    options = BuildOptions(build_args={"N": f"{user.username}-{n}"}, no_cache=True)
                    builds.append(buildservice.trigger_build(user, sources[user.pk], options))
            assert all(build.status == JobStatus.QUEUED for build in builds)
            # At most two of the first user's eight are handed out; the rest wait with their position.
            waiting = list(Build.objects.filter(owner=users[0], status=JobStatus.QUEUED, task_id="").order_by("pk"))
            # (Builds that already ended have let waiting ones through meanwhile.)
            ended = Build.objects.filter(owner=users[0]).exclude(
                status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).count()
            assert len(waiting) >= BUILDS[0] - PER_USER - ended
            assert [buildservice.queue_position(build) for build in waiting] == list(range(1, len(waiting) + 1))

            def all_final() -> bool:
                return not Build.objects.exclude(status__in=(JobStatus.SUCCEEDED, JobStatus.FAILED,
                                                             JobStatus.CANCELLED)).exists()

            wait_for(all_final, timeout=150, interval=0.5, message="all 20 builds to end")

            def runs_logged() -> list[int]:
                return [sum(1 for line in worker.output().splitlines()
                            if "Task builds.run_build[" in line and "succeeded in" in line) for worker in workers]

            # A task logs "succeeded in" after it returns, which is after its build's row says it ended.
            wait_for(lambda: sum(runs_logged()) >= sum(BUILDS), timeout=30, interval=0.5,
                     message="every run's line in the workers' logs")
            runs_per_worker = runs_logged()
    finally:
        sampler.stop.set()
        sampler.join(timeout=10)
        remove_images(*Build.objects.exclude(image_id="").values_list("image_id", flat=True))

    finished = list(Build.objects.order_by("pk"))
    assert len(finished) == sum(BUILDS)
    assert [(b.pk, b.status, b.error) for b in finished if b.status != JobStatus.SUCCEEDED] == []
    assert all(b.image_id.startswith("sha256:") for b in finished)
    # Each build ran exactly once, and both workers took a share.
    assert sum(runs_per_worker) == sum(BUILDS) and all(runs_per_worker), runs_per_worker
    # Each build's log says what it echoed: none ran another's arguments.
    for build in finished:
        assert build.build_args["N"].startswith(build.owner.username)
    # The per-user limit, and the two workers' capacity, at every sampled moment.
    assert len(sampler.running) > 20
    assert max(max(sample.values(), default=0) for sample in sampler.placed) == PER_USER
    assert max(max(sample.values(), default=0) for sample in sampler.running) <= PER_USER
    assert max(sum(sample.values()) for sample in sampler.running) <= 2
    # The first user's builds went two at a time: both workers ran two of them at once at some moment.
    assert any(sample[users[0].pk] == PER_USER for sample in sampler.running)
