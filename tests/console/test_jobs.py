from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
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


# -- the runner --------------------------------------------------------------------------------------------------


class SampleRunner(jobs.JobRunner):
    model = SampleJob

    def __init__(self, work=None) -> None:
        self.calls: list[int] = []
        self.done = work or (lambda job: (JobStatus.SUCCEEDED, ""))

    def work(self, job):
        self.calls.append(job.pk)
        return self.done(job)


def test_the_runner_claims_works_and_finishes(job):
    runner = SampleRunner(lambda job: jobs.append_log(job, ["working"]) or (JobStatus.SUCCEEDED, ""))
    assert runner.run(job.pk) == job
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.finished_at is not None
    assert jobs.log_text(job) == "working"


def test_the_runner_records_an_unexpected_error_in_the_log_and_fails_the_job(job):
    def broken(job):
        raise KeyError("no-such-key-in-the-work")

    SampleRunner(broken).run(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    # The user's error field has the fixed words; the traceback is in the job's log only.
    assert job.error == jobs.runner.UNEXPECTED_ERROR
    assert "Traceback" not in job.error and "no-such-key-in-the-work" not in job.error
    log = jobs.log_text(job)
    assert jobs.runner.TRACEBACK_HEADER in log
    assert "Traceback (most recent call last):" in log
    assert "in broken" in log and "KeyError: 'no-such-key-in-the-work'" in log
    assert log.splitlines()[-1] == f"error: {jobs.runner.UNEXPECTED_ERROR}"


def test_a_job_whose_clean_up_breaks_is_still_finished(job):
    class BrokenEnd(SampleRunner):
        def conclude(self, job, status, error):
            raise RuntimeError("clean-up broke")

    BrokenEnd().run(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == jobs.runner.UNEXPECTED_ERROR
    assert "RuntimeError: clean-up broke" in jobs.log_text(job)


def test_the_runner_does_not_run_a_job_twice(job):
    runner = SampleRunner()
    assert runner.run(job.pk) == job
    assert runner.run(job.pk) is None
    assert runner.calls == [job.pk]


def test_the_runner_does_not_run_a_job_another_worker_claimed_or_a_cancelled_one(job):
    cancelled = SampleJob.objects.create()
    jobs.claim(SampleJob.objects.get(pk=job.pk))
    jobs.request_cancel(cancelled)
    runner = SampleRunner()
    assert runner.run(job.pk) is None
    assert runner.run(cancelled.pk) is None
    assert runner.run(10**9) is None
    assert runner.calls == []
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING


# -- enqueue on commit, by name ---------------------------------------------------------------------------------


@pytest.fixture
def broker(monkeypatch):
    """What is handed to the broker by name (the names here are registered by no module)."""
    from console.celery import app

    sent: list[tuple[str, list, dict]] = []

    class Result:
        id = "task-42"

    def send_task(name, args=None, **options):
        sent.append((name, list(args or []), options))
        return Result()

    monkeypatch.setattr(app, "send_task", send_task)
    return sent


def test_enqueue_sends_the_named_task_only_once_the_transaction_commits(job, broker,
                                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            jobs.enqueue_on_commit(job, "jobapp.unregistered_run", queue="elsewhere")
            assert broker == []
    assert broker == [("jobapp.unregistered_run", [job.pk], {"queue": "elsewhere"})]
    job.refresh_from_db()
    assert job.task_id == "task-42"


def test_enqueue_sends_nothing_when_the_transaction_rolls_back(job, broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            jobs.enqueue_on_commit(job, "jobapp.unregistered_run")
            raise RuntimeError("rolled back")
    assert callbacks == []
    assert broker == []
    job.refresh_from_db()
    assert job.task_id == ""


def test_a_registered_task_is_sent_through_its_own_object(job, monkeypatch, django_capture_on_commit_callbacks):
    from tests.jobapp.tasks import run_sample_job

    calls = []
    monkeypatch.setattr(run_sample_job, "delay", lambda pk: calls.append(pk) or type("R", (), {"id": "t-7"})())
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue_on_commit(job, "tests.jobapp.run_sample_job")
    assert calls == [job.pk]
    job.refresh_from_db()
    assert job.task_id == "t-7"


def test_the_services_send_work_by_name_not_through_their_tasks_modules():
    """The services are imported by their tasks modules: importing those back made a cycle."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for module in ("registry/services", "fleet/services", "builds/services"):
        # A module, or a package of them (fleet/services/ and registry/services/ are split by concern).
        single = root / f"{module}.py"
        paths = [single] if single.exists() else sorted((root / module).glob("*.py"))
        assert paths, module
        for path in paths:
            tree = ast.parse(path.read_text())
            imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
            assert not {name for name in imported if name and name.endswith(".tasks")}, path


# -- the reaper ----------------------------------------------------------------------------------------------------


def test_the_reaper_fails_a_stale_job_and_cleans_up_once(job):
    fresh, done = SampleJob.objects.create(), SampleJob.objects.create()
    for each in (job, fresh, done):
        jobs.claim(each)
    jobs.finish(done, JobStatus.SUCCEEDED)
    SampleJob.objects.filter(pk__in=[job.pk, done.pk]).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    cleaned = []

    reaped = jobs.reap_lost(SampleJob, timedelta(minutes=1), "lost it", log_line="error: lost it",
                            clean_up=lambda lost: cleaned.append(lost.pk))
    assert reaped == [job] and cleaned == [job.pk]
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.error == "lost it"
    assert jobs.log_text(job) == "error: lost it"
    assert SampleJob.objects.get(pk=fresh.pk).status == JobStatus.RUNNING
    assert SampleJob.objects.get(pk=done.pk).status == JobStatus.SUCCEEDED
    # Reaped once: a second pass finds nothing to fail or clean.
    assert jobs.reap_lost(SampleJob, timedelta(minutes=1), "lost it", clean_up=cleaned.append) == []
    assert cleaned == [job.pk]


def test_a_broken_clean_up_does_not_stop_the_reaper(job):
    other = SampleJob.objects.create()
    for each in (job, other):
        jobs.claim(each)
    SampleJob.objects.update(heartbeat_at=timezone.now() - timedelta(minutes=5))

    def clean_up(lost):
        raise RuntimeError("the engine is gone")

    assert len(jobs.reap_lost(SampleJob, timedelta(minutes=1), "lost", clean_up=clean_up)) == 2
    assert set(SampleJob.objects.values_list("status", flat=True)) == {JobStatus.FAILED}


# -- a real worker runs a job sent by name ------------------------------------------------------------------------


@pytest.mark.engine
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_job_enqueued_by_name(tmp_path):
    from tests.fixtures.worker import routed_to, running_worker, wait_for

    with running_worker(tmp_path, queues=("celery",), concurrency=1) as worker, routed_to(worker):
        with transaction.atomic():
            job = SampleJob.objects.create(payload="by name")
            jobs.enqueue_on_commit(job, "tests.jobapp.run_sample_job")

        def finished():
            job.refresh_from_db()
            return job.is_final

        wait_for(finished, message="the sample job to finish")
    assert job.status == JobStatus.SUCCEEDED and job.task_id
    assert jobs.log_text(job) == f"worker {worker.name} got by name"


def test_in_eager_mode_a_task_sent_by_name_runs_at_once(job):
    """CELERY_TASK_ALWAYS_EAGER keeps working for work sent by name, whether or not its module was imported."""
    from console.celery import app

    original = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        assert jobs.send("tests.jobapp.run_sample_job", job.pk)
    finally:
        app.conf.task_always_eager = original
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
