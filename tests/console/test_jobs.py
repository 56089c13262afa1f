from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from console import jobs
from console.constants import JobStatus
from tests.jobapp.models import SampleJob


@pytest.fixture
def job(db):
    return SampleJob.objects.create(payload="x")


def test_claiming_twice_lets_only_one_win(job):
    other_view = SampleJob.objects.get(pk=job.pk)
    assert jobs.claim(job) is True
    assert jobs.claim(other_view) is False
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert job.started_at is not None


@pytest.mark.django_db(transaction=True)
def test_racing_workers_claim_a_job_exactly_once():
    job = SampleJob.objects.create(payload="race")
    winners = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        try:
            barrier.wait()
            if jobs.claim(SampleJob.objects.get(pk=job.pk)):
                winners.append(threading.get_ident())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1


def test_log_lines_come_back_from_an_offset(job):
    jobs.claim(job)
    jobs.append_log(job, ["one", "two"])
    jobs.append_log(job, ["three"])
    chunk = jobs.read_log(job, offset=0)
    assert chunk.lines == ["one", "two", "three"]
    assert chunk.next_offset == 3
    assert chunk.finished is False
    later = jobs.read_log(job, offset=2)
    assert later.lines == ["three"]
    assert later.next_offset == 3
    assert jobs.read_log(job, offset=3).lines == []
    assert jobs.log_text(job) == "one\ntwo\nthree"


def test_reading_with_a_limit_pages_through(job):
    jobs.claim(job)
    jobs.append_log(job, [str(n) for n in range(10)])
    jobs.finish(job, JobStatus.SUCCEEDED)
    first = jobs.read_log(job, offset=0, limit=4)
    assert first.lines == ["0", "1", "2", "3"]
    assert first.finished is False
    last = jobs.read_log(job, offset=8, limit=4)
    assert last.lines == ["8", "9"]
    assert last.finished is True


def test_finish_records_the_error_once(job):
    jobs.claim(job)
    assert jobs.finish(job, JobStatus.FAILED, "it broke") is True
    assert job.status == JobStatus.FAILED
    assert job.error == "it broke"
    assert job.finished_at is not None
    assert jobs.finish(job, JobStatus.SUCCEEDED) is False
    assert job.status == JobStatus.FAILED


def test_finish_refuses_a_status_that_is_not_final(job):
    with pytest.raises(ValueError, match="not a final status"):
        jobs.finish(job, JobStatus.RUNNING)


def test_cancelling_a_queued_job_ends_it_at_once(job):
    assert jobs.request_cancel(job) is True
    assert job.status == JobStatus.CANCELLED
    assert jobs.claim(job) is False


def test_cancelling_a_running_job_asks_it_to_stop(job):
    jobs.claim(job)
    assert jobs.cancel_requested(job) is False
    assert jobs.request_cancel(job) is True
    assert job.status == JobStatus.RUNNING
    assert jobs.cancel_requested(job) is True


def test_a_final_job_cannot_be_cancelled(job):
    jobs.claim(job)
    jobs.finish(job, JobStatus.SUCCEEDED)
    assert jobs.request_cancel(job) is False
    assert job.status == JobStatus.SUCCEEDED


def test_stale_jobs_are_those_without_a_recent_heartbeat(job):
    fresh = SampleJob.objects.create()
    jobs.claim(job)
    jobs.claim(fresh)
    SampleJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert list(jobs.stale_jobs(SampleJob, timedelta(minutes=1))) == [job]
    jobs.heartbeat(job)
    assert not jobs.stale_jobs(SampleJob, timedelta(minutes=1)).exists()
