"""A real Celery worker, in its own process, consuming the real broker and writing to the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from console.constants import JobStatus
from tests.jobapp.models import SampleJob
from tests.jobapp.tasks import run_sample_job

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_task_from_the_broker():
    if connection.vendor != "postgresql":
        pytest.skip("the worker shares the test database over a connection: run under `make test` (PostgreSQL)")
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url(),
           "CELERY_BROKER_URL": settings.CELERY_BROKER_URL}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "console", "worker", "-Q", queue, "--concurrency=1",
         "--pool=solo", "--without-gossip", "--without-mingle", "--loglevel=WARNING", "-n", f"{queue}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        job = SampleJob.objects.create(payload="hello from the test")
        run_sample_job.apply_async(args=[job.pk], queue=queue)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.is_final:
                break
            time.sleep(0.2)
        assert job.status == JobStatus.SUCCEEDED, worker.stdout.read1().decode() if worker.poll() else job.status
        from console.jobs import log_text

        assert log_text(job) == f"worker {queue}@{os.uname().nodename} got hello from the test"
    finally:
        worker.terminate()
        worker.wait(timeout=30)
