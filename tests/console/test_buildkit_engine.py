"""BuildKit builds through the Docker CLI against the real engine (console/engine/buildkit.py).

Every image is tagged console-test/buildkit-<random> and removed by id at the end of its test; the contexts are
small tars made in memory, FROM the local busybox:1.35.0 (scripts/setup.sh imports it)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from console.engine import Engine, EngineUnavailable
from console.engine.buildkit import (
    FOLDER_PREFIX,
    BuildkitRequest,
    BuildkitStream,
    VertexDone,
    VertexError,
    VertexLog,
    VertexStarted,
    buildkit_cli,
    engine_has_buildkit,
    remove_stale_folders,
    start_build,
)
from tests.builds.archive_factory import tar_bytes

pytestmark = pytest.mark.engine

DOCKER = "/usr/bin/docker"
BASE = "busybox:1.35.0"
ROOT = Path(__file__).resolve().parents[2]


def docker(*args: str, check: bool = True) -> str:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, check=check).stdout


def context(files: dict[str, str]) -> list[bytes]:
    data = tar_bytes([(name, content.encode()) for name, content in files.items()])
    # In chunks, as the console streams a context.
    return [data[index:index + 4096] for index in range(0, len(data), 4096)]


def sleeping(seconds: int) -> list[str]:
    """Ids of processes running `sleep <seconds>` (a test's own RUN step)."""
    listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in listing.splitlines() if line.split()[1:] == ["sleep", str(seconds)]]


def wait_until(condition, timeout: float, step: float = 0.1) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout}s")
        time.sleep(step)
    return time.monotonic() - start


@pytest.fixture(scope="module")
def engine():
    docker("image", "inspect", BASE)
    with Engine.for_builds() as engine:
        yield engine


@pytest.fixture
def tag(built):
    name = f"console-test/buildkit-{secrets.token_hex(6)}"
    yield f"{name}:t"


@pytest.fixture
def built():
    """Image ids a test made; removed (by id, with their tags) at its end."""
    made: list[str] = []
    yield made
    for image_id in made:
        if image_id:
            subprocess.run([DOCKER, "rmi", "-f", image_id], capture_output=True)


def run(engine, built, **fields):
    stream = start_build(engine, BuildkitRequest(**fields))
    events = list(stream)
    built.append(stream.image_id)
    return stream, events


def logs(events) -> list[str]:
    return [event.text for event in events if isinstance(event, VertexLog)]


def test_the_cli_and_the_engine_here_build_with_buildkit(engine):
    assert buildkit_cli() == [DOCKER, "build"]
    assert engine_has_buildkit(engine)


def test_the_image_id_is_the_engines(engine, built, tag):
    stream, events = run(engine, built, context=context({"Dockerfile": f"FROM {BASE}\nRUN echo built > /b\n"}),
                         tags=[tag], no_cache=True)
    assert stream.returncode == 0 and stream.error == ""
    assert stream.image_id.startswith("sha256:")
    assert docker("image", "inspect", "-f", "{{.Id}}", tag).strip() == stream.image_id
    assert any(isinstance(event, VertexStarted) and event.instruction == "RUN echo built > /b" for event in events)
    assert not Path(stream._folder).exists()


def cache_mounts(engine, token: str) -> list[str]:
    """Ids of the engine's cache mounts made by a RUN step whose text holds `token` (the engine's description of
    a cache mount quotes its step): only a test's own, never another run's."""
    with engine.errors("Reading the build cache"):
        records = engine.api.df().get("BuildCache") or []
    return [record["ID"] for record in records
            if record.get("Type") == "exec.cachemount" and token in (record.get("Description") or "")]


@pytest.fixture
def cache_token(engine):
    """A token for a test's cache mounts; those are removed at its end, by id."""
    token = f"console-test-{secrets.token_hex(6)}"
    yield token
    # A build's hold on its cache mount ends a moment after the build: try again for a few seconds.
    deadline = time.monotonic() + 10
    while (made := cache_mounts(engine, token)) and time.monotonic() < deadline:
        for cache_id in made:
            docker("builder", "prune", "-f", "--filter", f"id={cache_id}", check=False)
        time.sleep(0.2)
    assert not cache_mounts(engine, token)


def test_a_cache_mount_is_seen_by_the_next_build(engine, built, tag, cache_token):
    dockerfile = (f"FROM {BASE}\nARG RUN_ID\n"
                  f"RUN --mount=type=cache,id={cache_token},target=/cache "
                  f"sh -c 'echo run=$RUN_ID {cache_token}; ls /cache; touch /cache/from-$RUN_ID'\n")
    first, events = run(engine, built, context=context({"Dockerfile": dockerfile}), tags=[tag],
                        build_args={"RUN_ID": "one"})
    assert first.returncode == 0, first.error
    assert f"run=one {cache_token}" in logs(events) and "from-one" not in logs(events)
    second, events = run(engine, built, context=context({"Dockerfile": dockerfile}), tags=[tag],
                         build_args={"RUN_ID": "two"})
    assert second.returncode == 0, second.error
    assert f"run=two {cache_token}" in logs(events) and "from-one" in logs(events)
    # The cache is not in the image.
    assert docker("run", "--rm", second.image_id, "ls", "/cache").strip() == ""


def test_bind_and_tmpfs_mounts_leave_nothing_in_the_image(engine, built, tag):
    dockerfile = textwrap.dedent(f"""\
        FROM {BASE}
        RUN --mount=type=bind,source=data.txt,target=/mnt/data.txt cat /mnt/data.txt
        RUN --mount=type=tmpfs,target=/scratch sh -c 'grep " /scratch " /proc/mounts|cut -d" " -f3; echo x >/scratch/f'
        RUN test ! -e /mnt/data.txt && test ! -e /scratch/f && echo nothing-left
        """)
    stream, events = run(engine, built, context=context({"Dockerfile": dockerfile, "data.txt": "bound data\n"}),
                         tags=[tag], no_cache=True)
    assert stream.returncode == 0, stream.error
    assert {"bound data", "tmpfs", "nothing-left"} <= set(logs(events))


def test_a_secret_is_read_by_its_step_and_never_reaches_the_image_or_the_command_line(engine, built, tag):
    value = "s3cret-" + secrets.token_hex(12)
    dockerfile = (f"FROM {BASE}\n"
                  "RUN --mount=type=secret,id=api_token sh -c 'echo length=$(wc -c < /run/secrets/api_token)'\n")
    stream = start_build(engine, BuildkitRequest(context=context({"Dockerfile": dockerfile}), tags=[tag],
                                                 no_cache=True, secrets={"api_token": value}))
    folder = Path(stream._folder)
    secret_files = list((folder / "secrets").iterdir())
    assert [oct(path.stat().st_mode & 0o777) for path in secret_files] == ["0o600"]
    assert oct(folder.stat().st_mode & 0o777) == "0o700" and oct((folder / "secrets").stat().st_mode & 0o777) == "0o700"
    pid = stream._process.pid
    process_text = Path(f"/proc/{pid}/cmdline").read_bytes() + Path(f"/proc/{pid}/environ").read_bytes()
    assert value.encode() not in process_text
    events = list(stream)
    built.append(stream.image_id)
    assert stream.returncode == 0, stream.error
    assert f"length={len(value)}" in logs(events)
    assert not folder.exists()
    seen = docker("history", "--no-trunc", tag) + docker("inspect", tag)
    assert value not in seen and "api_token" not in docker("inspect", tag)


def test_labels_land_in_the_config_with_no_history_entries(engine, built, tag):
    files = {"Dockerfile": f"FROM {BASE}\nRUN echo one > /one\n"}
    stream, _ = run(engine, built, context=context(files), tags=[tag],
                    labels={"io.console.build": "42", "org.example.team": "blue green"})
    assert stream.returncode == 0, stream.error
    config = json.loads(docker("inspect", tag))[0]["Config"]
    assert config["Labels"]["io.console.build"] == "42"
    assert config["Labels"]["org.example.team"] == "blue green"
    history = docker("history", "--no-trunc", "-q", tag).split()
    assert len(history) == len(docker("history", "--no-trunc", "-q", BASE).split()) + 1


def test_target_builds_one_stage_of_a_multi_stage_build(engine, built, tag):
    dockerfile = textwrap.dedent(f"""\
        FROM {BASE} AS base
        RUN echo base > /base
        FROM base AS middle
        RUN echo middle > /middle
        FROM base
        RUN echo final > /final
        """)
    stream, events = run(engine, built, context=context({"Dockerfile": dockerfile}), tags=[tag], target="middle",
                         no_cache=True)
    assert stream.returncode == 0, stream.error
    steps = {event.instruction: event.stage for event in events if isinstance(event, VertexStarted) and event.step}
    # With a target, the first stage's FROM is named "[base 1/2] FROM ..." or "[1/2] FROM ..." from run to run
    # (BuildKit 0.8 here): the stage of a FROM is not to be relied on.
    assert steps.pop("FROM docker.io/library/busybox:1.35.0") in ("base", None)
    assert steps == {"RUN echo base > /base": "base", "RUN echo middle > /middle": "middle"}
    assert docker("run", "--rm", stream.image_id, "cat", "/middle").strip() == "middle"
    assert docker("run", "--rm", stream.image_id, "ls", "/final", check=False) == ""


def test_a_dockerfile_in_a_folder_of_the_context(engine, built, tag):
    files = {"sub/app.Dockerfile": f"FROM {BASE}\nCOPY sub/msg /msg\nRUN cat /msg\n", "sub/msg": "from sub\n"}
    stream, events = run(engine, built, context=context(files), tags=[tag], dockerfile="sub/app.Dockerfile",
                         no_cache=True)
    assert stream.returncode == 0, stream.error
    assert "from sub" in logs(events)


def test_a_failing_run_gives_its_error_and_no_image(engine, built, tag):
    stream, events = run(engine, built, tags=[tag], no_cache=True,
                         context=context({"Dockerfile": f"FROM {BASE}\nRUN echo about-to-fail && exit 3\n"}))
    assert stream.returncode != 0 and stream.image_id == ""
    errors = [event for event in events if isinstance(event, VertexError)]
    assert len(errors) == 1 and "exit code: 3" in errors[0].message
    assert "about-to-fail" in logs(events)
    assert "exit code: 3" in stream.error
    assert docker("image", "inspect", tag, check=False).strip() == "[]"


def test_abort_during_a_long_run_stops_the_build_within_seconds(engine, built, tag):
    seconds = 300 + secrets.randbelow(99)
    dockerfile = f"FROM {BASE}\nRUN echo sleeping-{seconds} && sleep {seconds}\n"
    stream = start_build(engine, BuildkitRequest(context=context({"Dockerfile": dockerfile}), tags=[tag],
                                                 no_cache=True))
    aborted_at = None
    for event in stream:
        if isinstance(event, VertexLog) and event.text == f"sleeping-{seconds}":
            assert sleeping(seconds)
            aborted_at = time.monotonic()
            stream.abort()
    stopped = time.monotonic() - aborted_at
    built.append(stream.image_id)
    assert stopped < 6, stopped
    assert stream.image_id == "" and stream.error == "The build was stopped."
    wait_until(lambda: not sleeping(seconds), timeout=10)
    # The engine is not held by the stopped build: the next one runs at once.
    started = time.monotonic()
    after, _ = run(engine, built, context=context({"Dockerfile": f"FROM {BASE}\nRUN echo next\n"}), tags=[tag],
                   no_cache=True)
    assert after.returncode == 0 and time.monotonic() - started < 30


CHILD = """
import os, sys, time
import django
django.setup()
from console.engine import Engine
from console.engine.buildkit import BuildkitRequest, VertexLog, start_build
tar = open(sys.argv[1], "rb").read()
stream = start_build(Engine.for_builds(), BuildkitRequest(context=[tar], no_cache=True))
for event in stream:
    if isinstance(event, VertexLog) and event.text.startswith("sleeping"):
        print(stream._process.pid, flush=True)
        time.sleep(600)
"""


def test_a_worker_that_dies_takes_its_build_with_it(engine, tmp_path):
    seconds = 300 + secrets.randbelow(99)
    tar = tmp_path / "context.tar"
    tar.write_bytes(b"".join(context({"Dockerfile": f"FROM {BASE}\nRUN echo sleeping && sleep {seconds}\n"})))
    worker = subprocess.Popen([sys.executable, "-c", CHILD, str(tar)], cwd=ROOT, stdout=subprocess.PIPE,
                              env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}, text=True)
    try:
        cli_pid = int(worker.stdout.readline())
        assert sleeping(seconds)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    elapsed = wait_until(lambda: not Path(f"/proc/{cli_pid}").exists() or _zombie(cli_pid), timeout=5)
    elapsed += wait_until(lambda: not sleeping(seconds), timeout=10)
    assert elapsed < 10
    # The dead worker could not remove its build's folder: the next one to look does.
    left = [path for path in remove_stale_folders() if Path(path).name.startswith(f"{FOLDER_PREFIX}{worker.pid}-")]
    assert len(left) == 1 and not Path(left[0]).exists()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True


def test_an_engine_that_does_not_answer_is_unavailable(tmp_path):
    with Engine(f"unix://{tmp_path}/none.sock") as engine, pytest.raises(EngineUnavailable):
        start_build(engine, BuildkitRequest(context=[b""]))


def test_vertex_ends_are_reported(engine, built, tag):
    stream, events = run(engine, built, context=context({"Dockerfile": f"FROM {BASE}\nRUN printf no-newline\n"}),
                         tags=[tag], no_cache=True)
    run_step = next(event.vertex for event in events if isinstance(event, VertexStarted)
                    and event.instruction.startswith("RUN"))
    mine = [event for event in events if getattr(event, "vertex", None) == run_step]
    assert mine[1:] == [VertexLog(run_step, "no-newline"), VertexDone(run_step, mine[-1].seconds)]


def test_a_cli_that_cannot_reach_the_engine_is_unavailable(tmp_path):
    # Past the engine check of start_build: the CLI's own failure is told as such, in fixed words.
    with Engine(f"unix://{tmp_path}/none.sock") as engine:
        stream = BuildkitStream(engine, BuildkitRequest(context=context({"Dockerfile": f"FROM {BASE}\n"})),
                                buildkit_cli())
        # The CLI says "no such file or directory" or only "Cannot connect to the Docker daemon at ...".
        with pytest.raises(EngineUnavailable, match="the BuildKit client could not reach the Docker Engine at unix:"):
            list(stream)
    assert stream.image_id == "" and stream.returncode != 0
