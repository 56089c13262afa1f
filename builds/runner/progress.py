"""What a running build sends to its watchers: the log buffer (masked, flushed every WATCH_INTERVAL) and the
watcher thread beside the engine's stream (heartbeats, cancel, timeout, a build reaped as lost).
"""

from __future__ import annotations

import logging
import re
import threading
import time

from django.db import connection

from builds.constants import StepStatus
from builds.models import Build
from builds.services.builds import mask_secrets
from console import jobs
from console.constants import JobStatus
from console.engine.build import BuildStream

log = logging.getLogger(__name__)

# Colour codes the engine puts around a step's stderr.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
WATCH_INTERVAL = 0.25
HEARTBEAT_INTERVAL = 5

BUILD_WORKER_LOST = "The worker running this build was lost (no heartbeat)."


def stopped_outcome(reason: str | None, timeout: int) -> tuple[str, str, str] | None:
    """(the build's status, its running step's status, the error) for a build its Watcher stopped; None when the
    watcher did not stop it."""
    if reason == "cancelled":
        return JobStatus.CANCELLED, StepStatus.CANCELLED, "Cancelled."
    if reason == "lost":
        return JobStatus.FAILED, StepStatus.FAILED, BUILD_WORKER_LOST
    if reason == "timeout":
        return JobStatus.FAILED, StepStatus.FAILED, f"The build took longer than its timeout of {timeout} seconds."
    return None


class LogBuffer:
    """Log lines from the engine's stream, written at most every WATCH_INTERVAL (or at once when quiet)."""

    def __init__(self, build: Build, secrets: dict[str, str]) -> None:
        self.build = build
        self.secrets = secrets
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.last_flush = 0.0
        self.errors: set[str] = set()

    def error(self, message: str) -> None:
        self.errors.add(message)
        self.add(f"ERROR: {message}")

    def add(self, text: str) -> None:
        with self.lock:
            self.lines.extend(
                mask_secrets(clean, self.secrets)
                for line in text.splitlines()
                if (clean := ANSI_ESCAPE.sub("", line).rstrip())
            )
        if time.monotonic() - self.last_flush >= WATCH_INTERVAL:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            lines, self.lines = self.lines, []
            self.last_flush = time.monotonic()
            if lines:
                jobs.append_log(self.build, lines)


class Watcher(threading.Thread):
    """Heartbeats, log flushes, and stopping the build on cancel or timeout."""

    def __init__(self, build: Build, logbuffer: LogBuffer, stream: BuildStream, deadline: float) -> None:
        super().__init__(daemon=True, name=f"build-{build.pk}-watcher")
        self.build, self.logbuffer, self.stream, self.deadline = build, logbuffer, stream, deadline
        self.stopping = threading.Event()
        self.reason: str | None = None

    def run(self) -> None:
        last_beat = 0.0
        try:
            while not self.stopping.wait(WATCH_INTERVAL):
                self.logbuffer.flush()
                now = time.monotonic()
                if now - last_beat >= HEARTBEAT_INTERVAL:
                    jobs.heartbeat(self.build)
                    last_beat = now
                    if self.reason is None and not Build.objects.filter(
                            pk=self.build.pk, status=JobStatus.RUNNING).exists():
                        # Reaped as lost (this worker was silent too long): stop what the engine still runs.
                        self.stop_build("lost")
                if self.reason is None and jobs.cancel_requested(self.build):
                    self.stop_build("cancelled")
                elif self.reason is None and now > self.deadline:
                    self.stop_build("timeout")
        finally:
            connection.close()

    def stop_build(self, reason: str) -> None:
        # Closing the connection is enough: the engine kills and removes the running step's container.
        self.reason = reason
        self.stream.abort()
