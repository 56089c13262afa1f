"""The console's registry process and its read-only window for garbage collection.

Distribution 2.8 reads `storage.maintenance.readonly` only when it starts, so a read-only window is a restart:
`manage.py registry_serve` (what `scripts/registry.sh` runs) is a small supervisor that owns the `docker-registry
serve` process and restarts it with `config-readonly.yml` while a read-only lease is held, then with `config.yml`
again. Meanwhile the registry still serves pulls; a push gets a refusal, never half an image (Distribution answers
every write 405 in that mode).

The protocol is two small JSON files in `REGISTRY_DIR/run/`, so that the garbage collection job (in a worker on
the same machine, which must see REGISTRY_DIR anyway to collect) needs no channel of its own:
- `lease.json` `{"mode": "readonly", "until": <epoch seconds>, "holder": ...}`, written by the job and renewed
  while it works; once `until` passes (the job's worker died) the supervisor serves read-write again by itself;
- `state.json` `{"mode", "pid", "since"}`, written by the supervisor once the registry answers in that mode.

The registry is down for the moment of each restart (about a second here: Distribution stops at once with no
upload in flight, and waits up to `http.draintimeout` for those that are); a client then sees the connection
refused, and the Docker engine retries.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

READ_ONLY = "readonly"
READ_WRITE = "readwrite"
RUN_FOLDER = "run"
LEASE_FILE = "lease.json"
STATE_FILE = "state.json"
# How often the supervisor looks at the lease and its child.
POLL_SECONDS = 0.2
# How long a restarted registry has to answer before the supervisor gives up.
START_SECONDS = 30


def run_folder(directory: Path) -> Path:
    folder = Path(directory) / RUN_FOLDER
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _write_json(path: Path, value: dict) -> None:
    """Written whole or not at all: a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(value))
    os.replace(temporary, path)


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def hold_read_only(directory: Path, seconds: float, holder: str) -> None:
    """Ask for (or renew) the read-only window for `seconds` from now."""
    _write_json(run_folder(directory) / LEASE_FILE, {"mode": READ_ONLY, "until": time.time() + seconds,
                                                     "holder": holder})


def release(directory: Path) -> None:
    try:
        (Path(directory) / RUN_FOLDER / LEASE_FILE).unlink()
    except FileNotFoundError:
        pass


def wanted_mode(directory: Path, now: float | None = None) -> str:
    lease = _read_json(Path(directory) / RUN_FOLDER / LEASE_FILE)
    now = time.time() if now is None else now
    if lease and lease.get("mode") == READ_ONLY and isinstance(lease.get("until"), int | float) \
            and lease["until"] > now:
        return READ_ONLY
    return READ_WRITE


def served_mode(directory: Path) -> dict | None:
    """The supervisor's last word: `{"mode", "pid", "since"}`, or None when no supervisor ever ran here."""
    return _read_json(Path(directory) / RUN_FOLDER / STATE_FILE)


def supervised(directory: Path) -> bool:
    """Whether a supervisor serves the registry stored in `directory` (on this machine) now."""
    state = served_mode(directory)
    return bool(state) and _alive(state.get("pid"))


def wait_for_mode(directory: Path, mode: str, timeout: float, since: float = 0.0) -> bool:
    """True once the supervisor says it serves `mode` (switched at or after `since`), False after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        state = served_mode(directory)
        if state and state.get("mode") == mode and float(state.get("since") or 0) >= since \
                and _alive(state.get("pid")):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers(address: str) -> bool:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    try:
        socket.create_connection((host, int(port)), timeout=0.5).close()
        return True
    except (OSError, ValueError):
        return False


class Supervisor:
    """Runs `docker-registry serve` in the mode the lease asks for; stops with its child."""

    def __init__(self, directory: Path, address: str, configs: dict[str, Path], binary: str | None = None,
                 announce=None):
        self.announce = announce or (lambda line: log.warning("%s", line))
        self.directory = Path(directory)
        self.address = address
        self.configs = configs
        self.binary = binary or shutil.which("docker-registry") or "docker-registry"
        self.child: subprocess.Popen | None = None
        self.mode = ""
        self.stopping = False

    def _start(self, mode: str) -> None:
        self.child = subprocess.Popen([self.binary, "serve", str(self.configs[mode])], stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_SECONDS
        while not _answers(self.address):
            if self.child.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"docker-registry did not start in {mode} mode (exit status {self.child.poll()})")
            time.sleep(0.05)
        self.mode = mode
        _write_json(run_folder(self.directory) / STATE_FILE,
                    {"mode": mode, "pid": self.child.pid, "since": time.time()})
        self.announce(f"registry: docker-registry serves {mode} (pid {self.child.pid})")

    def _stop_child(self) -> None:
        if self.child is None or self.child.poll() is not None:
            return
        self.child.send_signal(signal.SIGTERM)
        try:
            self.child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait(timeout=10)

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True

    def serve(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self._start(wanted_mode(self.directory))
        try:
            while not self.stopping:
                if self.child.poll() is not None and not self.stopping:
                    # Not a restart of ours: the registry stopped by itself, and whoever started us hears of it.
                    self.announce(f"registry: docker-registry exited with status {self.child.returncode}")
                    return self.child.returncode or 1
                wanted = wanted_mode(self.directory)
                if wanted != self.mode:
                    self.announce(f"registry: switching to {wanted}")
                    self._stop_child()
                    self._start(wanted)
                time.sleep(POLL_SECONDS)
        finally:
            self._stop_child()
        return 0
