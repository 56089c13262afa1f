"""The Celery tasks are thin: ids in, one service call."""

from __future__ import annotations

from registry import services
from registry.tasks import run_pull_task, run_push_task


def test_the_tasks_call_one_service_each(monkeypatch):
    calls = []
    monkeypatch.setattr(services, "run_push", lambda push_id: calls.append(("push", push_id)))
    monkeypatch.setattr(services, "run_pull", lambda pull_id: calls.append(("pull", pull_id)))
    run_push_task.apply(args=[7])
    run_pull_task.apply(args=[8])
    assert calls == [("push", 7), ("pull", 8)]
    assert run_push_task.acks_late and run_pull_task.acks_late
