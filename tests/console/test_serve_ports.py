"""`make run` refuses at once, before the set-up and before starting anything, when its web port or its registry's
port is taken or another console runs on its data folder, and says which port, which variable chose it, what holds
it and what to use instead (scripts/run.sh --preflight, scripts/ports.py)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.fixtures.make_run import ROOT, embedded_env, free_port

PLAIN = re.compile(r"\033\[[0-9;]*m")


@pytest.fixture
def taken_port():
    """A port this test process holds: listening, as a server holds its port."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.fixture
def fake_registry_bin(tmp_path):
    """A docker-registry on PATH, so that run.sh checks the registry's port on any machine; it must never be run."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "docker-registry").write_text("#!/bin/sh\necho 'the fake registry was started' >&2\nexit 99\n")
    (folder / "docker-registry").chmod(0o755)
    return folder


def refused(command: list[str], env: dict[str, str]) -> str:
    started = time.monotonic()
    answer = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    output = PLAIN.sub("", answer.stdout + answer.stderr)
    assert answer.returncode != 0, output
    # At once: no set-up, no worker started.
    assert time.monotonic() - started < 20, output
    assert "worker" not in output and "console on" not in output and "migrating" not in output, output
    assert not (Path(env["CONSOLE_DATA_DIR"]) / "log" / "worker.log").exists()
    return output


def test_it_refuses_a_taken_web_port_naming_it_and_its_holder(tmp_path, taken_port, fake_registry_bin):
    env = embedded_env(tmp_path / "data", taken_port, free_port())
    env["PATH"] = f"{fake_registry_bin}:{env['PATH']}"
    output = refused(["make", "--no-print-directory", "run"], env)
    assert f"port {taken_port} (PORT={taken_port}, for the web server) is already in use on 127.0.0.1:{taken_port}" \
        in output
    # This test's own process holds it.
    assert f"(pid {os.getpid()}:" in output, output
    suggested = int(re.search(r"start this console with PORT=(\d+)", output).group(1))
    assert suggested != taken_port
    assert "the fake registry was started" not in output


def test_it_refuses_a_taken_registry_port(tmp_path, fake_registry_bin):
    # Bound but not listening: the kernel's tables do not say by whom, and the message says so.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        env = embedded_env(tmp_path / "data", free_port(), port)
        env["PATH"] = f"{fake_registry_bin}:{env['PATH']}"
        output = refused(["scripts/run.sh"], env)
    assert (f"port {port} (REGISTRY_ADDRESS=127.0.0.1:{port}, for the console's registry) is already in use on "
            f"127.0.0.1:{port}: what holds it could not be found") in output
    assert re.search(r"start this console with REGISTRY_ADDRESS=127\.0\.0\.1:\d+", output)
    assert "the fake registry was started" not in output


def test_it_refuses_a_port_that_is_not_one(tmp_path):
    env = embedded_env(tmp_path / "data", free_port(), free_port())
    env["PORT"] = "80a"
    output = refused(["scripts/run.sh"], env)
    assert "PORT=80a does not name a port (1-65535)" in output


def test_it_refuses_a_data_folder_another_console_holds(tmp_path):
    env = embedded_env(tmp_path / "data", free_port(), free_port())
    lock = tmp_path / "data" / "run" / "console.pid"
    lock.parent.mkdir(parents=True)
    lock.write_text("4242\n")
    # What a running run.sh holds: the lock on its data folder's run/console.pid.
    holder = subprocess.Popen(["flock", str(lock), "sleep", "60"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["flock", "-n", str(lock), "true"]).returncode == 0:
            assert time.monotonic() < deadline, "the lock was not taken"
            time.sleep(0.05)
        output = refused(["scripts/run.sh"], env)
    finally:
        os.killpg(holder.pid, 9)
        holder.wait(timeout=10)
    assert f"another console runs on the data folder {tmp_path / 'data'} (pid 4242, or what it started)" in output
    assert "CONSOLE_DATA_DIR=" in output and "PORT=" in output
