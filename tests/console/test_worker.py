"""A real Celery worker, in its own process, consuming the real broker and writing to the test database."""

from __future__ import annotations

import pytest

from console.constants import JobStatus
from console.jobs import log_text
from tests.fixtures.worker import routed_to, running_worker, wait_for
from tests.jobapp.models import SampleJob
from tests.jobapp.tasks import run_sample_job

# Needs the real engine (left out of `make test-fast`).
pytestmark = pytest.mark.engine


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_task_from_the_broker(tmp_path):
    with running_worker(tmp_path, queues=("celery",), concurrency=1) as worker, routed_to(worker):
        job = SampleJob.objects.create(payload="hello from the test")
        run_sample_job.delay(job.pk)

        def finished():
            job.refresh_from_db()
            return job.is_final

        wait_for(finished, message="the sample job to finish")
    assert job.status == JobStatus.SUCCEEDED
    assert log_text(job) == f"worker {worker.name} got hello from the test"
