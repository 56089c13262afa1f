"""Hand a job to the workers once the transaction that made it commits, by the task's name.

The task is named, not imported: the module that defines a task imports the services, so a service importing its
own `tasks` module made a cycle. A rolled-back job is never sent (its row does not exist for a worker), and the
task's id is stored on the job so that a queued job can be revoked.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from console.constants import JobStatus
from console.jobs import lifecycle
from console.jobs.lifecycle import Job

log = logging.getLogger(__name__)


def send(name: str, *args: Any, **options: Any) -> str:
    """Send the task `name` now; returns its id ("" when the broker gave none).

    A task registered in this process is sent through its own object, as `delay(*args)` or, given options,
    `apply_async(args, **options)` (so eager mode and whatever wraps the task apply as to any call of it); one that
    is not is sent by name. The app's routes apply either way; an option given as None leaves the route's value."""
    from console.celery import app

    task = app.tasks.get(name)
    if task is None and app.conf.task_always_eager:
        # Eager mode (CELERY_TASK_ALWAYS_EAGER) runs the task in this process, which send_task would only queue:
        # load the apps' task modules, as a worker does.
        app.loader.import_default_modules()
        task = app.tasks.get(name)
    if task is None:
        result = app.send_task(name, args=list(args), **options)
    elif options:
        result = task.apply_async(args=list(args), **options)
    else:
        result = task.delay(*args)
    return str(getattr(result, "id", "") or "")


def enqueue_on_commit(job: Job, task_name: str, *, failed_error: str | None = None, **options: Any) -> None:
    """Send `task_name(job.pk)` when the current transaction commits (at once outside one), storing its task id.

    With `failed_error`, a send the broker refuses ends the job failed with those words (it can be asked for
    again) instead of raising: a job must not stay queued for a task that no broker holds."""
    model, pk = type(job), job.pk

    def send_it() -> None:
        try:
            task_id = send(task_name, pk, **options)
        except Exception:
            if failed_error is None:
                raise
            log.exception("Could not queue %s #%s", model.__name__, pk)
            lifecycle.finish(job, JobStatus.FAILED, failed_error)
            return
        model.objects.filter(pk=pk).update(task_id=task_id)

    transaction.on_commit(send_it)
