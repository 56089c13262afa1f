"""The job framework: the lifecycle every background run shares (builds, pushes, pulls, deployments, git imports,
image analyses).

- `lifecycle`: the abstract `Job` model, claim, heartbeat (`heartbeats`: from a thread), the log
  with offsets, finish, cancel;
- `runner`: `JobRunner`, claim -> work -> finish, a bug recorded in the job's log, no job left running;
- `enqueue`: `enqueue_on_commit(job, "app.task_name")`, by name, once the transaction commits;
- `reaper`: `reap_lost(model, older_than, error, clean_up=...)`, one reaper of jobs whose worker was lost;
- `logs`: the one `.../log/?offset=` answer of every job (imported by the API, not here: it needs DRF).

`from console import jobs` keeps the lifecycle's names: `jobs.claim`, `jobs.finish`, `jobs.append_log`, ...
"""

from __future__ import annotations

from console.jobs.enqueue import enqueue_on_commit, send
from console.jobs.lifecycle import (
    Job,
    LogChunk,
    append_log,
    cancel_requested,
    claim,
    finish,
    heartbeat,
    heartbeats,
    log_text,
    log_texts,
    on_finish,
    read_log,
    request_cancel,
    stale_jobs,
)
from console.jobs.reaper import reap_lost
from console.jobs.runner import JobRunner

__all__ = [
    "Job",
    "JobRunner",
    "LogChunk",
    "append_log",
    "cancel_requested",
    "claim",
    "enqueue_on_commit",
    "finish",
    "heartbeat",
    "heartbeats",
    "log_text",
    "log_texts",
    "on_finish",
    "reap_lost",
    "read_log",
    "request_cancel",
    "send",
    "stale_jobs",
]
