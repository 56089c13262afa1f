"""Jobs that end become events once (console/jobs/lifecycle.on_finish): pushes here; the other kinds register
the same way in their AppConfig.ready()."""

from __future__ import annotations

import pytest

from console import jobs
from console.constants import JobStatus
from console.events.models import Event
from registry.models import Push, RegistryAccount
from tests.jobapp.models import SampleJob

pytestmark = pytest.mark.django_db


def test_a_finished_push_is_one_push_finished_event(owner):
    account = RegistryAccount.objects.create(owner=owner, name="lab", kind="generic", url="https://r.example.com")
    push = Push.objects.create(owner=owner, registry=account, image="app:1", repository="team/app", tag="1")
    jobs.claim(push)
    assert jobs.finish(push, JobStatus.SUCCEEDED)
    assert not jobs.finish(push, JobStatus.FAILED)
    [event] = Event.objects.all()
    assert event.kind == "push.finished" and event.owner == owner and event.repository == "team/app"
    assert event.data["status"] == "succeeded" and event.data["tag"] == "1" and event.data["push"] == push.pk


def test_a_cancelled_queued_job_is_final_too_and_a_broken_listener_ends_nothing(monkeypatch):
    seen = []
    monkeypatch.setattr("console.jobs.lifecycle._finish_listeners", {})
    jobs.on_finish(SampleJob, seen.append)
    jobs.on_finish(SampleJob, lambda job: 1 / 0)
    job = SampleJob.objects.create()
    assert jobs.request_cancel(job)
    assert [item.pk for item in seen] == [job.pk]
    other = SampleJob.objects.create()
    jobs.claim(other)
    assert jobs.finish(other, JobStatus.FAILED, "no")
    assert SampleJob.objects.get(pk=other.pk).status == JobStatus.FAILED
