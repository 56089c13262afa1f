"""Benchmark: the same rolling update of a 6-replica Swarm service, through the console and by hand with the Docker
CLI, in one run on one swarm.

Starts a real swarm of three engines in network namespaces (tests/fixtures/swarm.py: a manager and two workers), a
Distribution registry with Basic auth on the manager's gateway (the nodes pull from it, with the credentials the
service carries), and the console as `make run` runs it (bench/pipeline.py's Console: a throwaway data folder,
SQLite, the filesystem broker, gunicorn and one worker). Builds examples/hello in as many releases as the run
updates to (each a new digest: a label apart, so each node pulls only its manifest and config), and pushes them.

Two services of the same settings: 6 replicas of examples/hello with WHO set, the update settings a user would
give (`--update-parallelism 2 --update-delay 1s`, Swarm's defaults for the rest: stop-first, pause on failure, a
5 s monitor window), `--init`, the credentials sent with the service. Each round updates each service to a new
release, alternating which goes first:

(a) the console, through its REST API as a script would: `POST /api/v1/deployments/` with the new tag, then the
    deployment until it is final (the worker pins the tag's digest, updates the service, follows Swarm's rollout
    until the update completed and every task runs the new digest);
(b) a person with Debian's CLI 20.10, logged in to the registry beforehand: `docker -H <manager> service update
    --with-registry-auth --image <tag> bench-cli`, which resolves the digest the same way and waits, as it does
    by default, until the service converged and stayed so for the monitor window.

Prints both times per round, their medians and the ratio console/CLI (target: at most 1.10). Run as root:

    .venv/bin/python bench/swarm.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
WORK = Path(tempfile.mkdtemp(prefix="console-bench-swarm-"))
# This process only reads settings (the engine wrapper's timeouts): its data folder is the bench's own.
os.environ.setdefault("CONSOLE_DATA_DIR", str(WORK / "bench-data"))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{WORK / 'bench-data' / 'unused.sqlite3'}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

import django  # noqa: E402

django.setup()

TARGET_RATIO = 1.10
REPLICAS = 6
PARALLELISM, DELAY = 2, 1
REPOSITORY = "bench/swarm-hello"
CLI_SERVICE = "bench-cli"
TIMEOUT = 300
USER = "bench"


def build_releases(count: int) -> list[str]:
    """examples/hello and `count` releases of it, each a label apart (a new digest, the same layers)."""
    from console.engine import Engine

    tags = [f"console-bench/swarm-hello:{n}" for n in range(count)]
    with Engine.for_builds() as engine, engine.errors("Building the benchmark's images"):
        for event in engine.api.build(path=str(ROOT / "examples" / "hello"), tag=tags[0], rm=True, decode=True):
            if "error" in event:
                raise SystemExit(f"build failed: {event['error']}")
        for n, tag in enumerate(tags[1:], start=1):
            dockerfile = f"FROM {tags[0]}\nLABEL console.bench.release={n}-{secrets.token_hex(4)}\n"
            for event in engine.api.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, decode=True):
                if "error" in event:
                    raise SystemExit(f"build failed: {event['error']}")
    return tags


def push_releases(tags: list[str], registry, credentials: dict) -> list[str]:
    """Push each release through the registry's loopback address; returns their names as the nodes pull them."""
    from console.engine import Engine

    names = []
    with Engine.for_builds() as engine, engine.errors("Pushing the benchmark's images"):
        for n, tag in enumerate(tags):
            pushed = f"{registry.push_address}/{REPOSITORY}"
            engine.api.tag(tag, pushed, f"r{n}")
            for event in engine.api.push(pushed, tag=f"r{n}", stream=True, decode=True, auth_config=credentials):
                if "error" in event:
                    raise SystemExit(f"push failed: {event['error']}")
            engine.api.remove_image(f"{pushed}:r{n}")
            names.append(f"{registry.address}/{REPOSITORY}:r{n}")
    return names


def cli(docker: str, config: Path, manager: str, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([docker, "--config", str(config), "-H", manager, *args], input=stdin,
                          capture_output=True, text=True, timeout=TIMEOUT)
    if done.returncode != 0:
        raise SystemExit(f"docker {' '.join(args[:2])} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def converged_on(swarm, service: str, reference: str) -> None:
    """Both sides' end state, checked after each round: every task that should run runs the new release."""
    with swarm.manager.engine() as engine, engine.errors("Reading a benchmark service"):
        tasks = engine.api.tasks(filters={"service": service, "desired-state": "running"})
        spec = engine.api.inspect_service(service)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    running = [task for task in tasks if task["Status"]["State"] == "running"]
    if not spec.startswith(reference + "@sha256:") or len(running) != REPLICAS or len(tasks) != REPLICAS or {
            task["Spec"]["ContainerSpec"]["Image"] for task in running} != {spec}:
        raise SystemExit(f"{service} did not end on {reference} with {REPLICAS} tasks running: "
                         f"{[(t['Spec']['ContainerSpec']['Image'], t['Status']['State']) for t in tasks]}")


def swarm_took(swarm, service: str) -> float:
    """How long Swarm itself says the service's last update took (UpdateStatus: StartedAt -> CompletedAt)."""
    deadline = time.monotonic() + 30
    while True:
        with swarm.manager.engine() as engine, engine.errors("Reading a benchmark service"):
            status = engine.api.inspect_service(service).get("UpdateStatus") or {}
        if "StartedAt" in status and "CompletedAt" in status:
            return _moment(status["CompletedAt"]) - _moment(status["StartedAt"])
        if time.monotonic() > deadline:
            return float("nan")
        time.sleep(0.2)


def console_round(console, host: int, account: int, reference: str) -> tuple[float, str]:
    started = time.monotonic()
    deployment = console.api("POST", "deployments/", json={
        "name": "bench", "image": reference, "hosts": [host], "registry": account, "env": {"WHO": "the bench"},
        "replicas": REPLICAS, "update": {"parallelism": PARALLELISM, "delay": DELAY}})
    posted = time.monotonic() - started
    deployment = console.wait_for(f"deployments/{deployment['id']}/", started + TIMEOUT, poll=0.05)
    elapsed = time.monotonic() - started
    seen = time.time()
    target = deployment["targets"][0]
    queued = _moment(deployment["started_at"]) - _moment(deployment.get("queued_at") or deployment["created"])
    detail = (f"POST {posted:.2f} s, queued {queued:.2f} s, target "
              f"{_moment(target['finished_at']) - _moment(target['started_at']):.2f} s, seen final "
              f"{seen - _moment(target['finished_at']):.2f} s after it")
    return elapsed, detail


def cli_round(docker: str, config: Path, manager: str, reference: str) -> float:
    started = time.monotonic()
    cli(docker, config, manager, "service", "update", "--with-registry-auth", "--image", reference, CLI_SERVICE)
    return time.monotonic() - started


def _moment(text: str) -> float:
    from datetime import datetime

    # Swarm's times have nanoseconds: Python reads at most microseconds.
    text = text.replace("Z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(char for char in rest if char.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits):]}"
    return datetime.fromisoformat(text).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds is at least 1")
    # Debian's CLI 20.10 (another `docker` may be earlier on PATH).
    docker = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else shutil.which("docker") or "docker"

    from pipeline import Console

    from tests.fixtures.registry import REGISTRY_USER, start_distribution
    from tests.fixtures.swarm import start_swarm
    from tests.fleet.test_deploy_from_registry import GatewayRegistry

    work = WORK
    config = work / "cli-config"
    config.mkdir(mode=0o700)
    password = "pw-" + secrets.token_urlsafe(12)
    entry = subprocess.run(["htpasswd", "-iBn", REGISTRY_USER], input=password, capture_output=True, text=True,
                           check=True).stdout
    (work / "htpasswd").write_text(entry)
    tags = build_releases(1 + 2 * args.rounds)
    swarm = start_swarm()
    server = None
    console = Console()
    rows: list[tuple[float, float]] = []
    try:
        server = start_distribution(work, {"htpasswd": {"realm": "bench", "path": str(work / "htpasswd")}},
                                    listen="0.0.0.0", username=REGISTRY_USER, password=password)
        registry = GatewayRegistry(server, swarm.manager.gateway)
        references = push_releases(tags, registry, {"username": REGISTRY_USER, "password": password,
                                                    "serveraddress": registry.push_address})
        manager = swarm.manager.url
        console.start()
        # The registry listens on this machine's own address (the nodes' gateway): an operator's, for staff.
        console.manage("shell", "-c", "from django.contrib.auth import get_user_model; "
                                      f"get_user_model().objects.filter(username={USER!r}).update(is_staff=True)")
        host = console.api("POST", "hosts/", json={"name": "swarm", "url": manager})["id"]
        console.api("POST", f"hosts/{host}/check/")
        account = console.api("POST", "registries/", json={
            "name": "bench", "kind": "generic", "url": f"http://{registry.address}", "username": REGISTRY_USER,
            "secret": password})["id"]
        cli(docker, config, manager, "login", "--username", REGISTRY_USER, "--password-stdin", registry.address,
            stdin=password)
        print(f"swarm: manager {swarm.manager.address}, workers "
              f"{', '.join(worker.address for worker in swarm.workers)}; registry {registry.address} (Basic auth); "
              f"console on {console.base} (SQLite, filesystem broker, gunicorn, one worker); "
              f"{REPLICAS} replicas, parallelism {PARALLELISM}, delay {DELAY} s", flush=True)
        # Both services created with the first release: the console's by a first deployment, the CLI's by hand.
        started = time.monotonic()
        console_round(console, host, account, references[0])
        print(f"created through the console in {time.monotonic() - started:.2f} s", flush=True)
        started = time.monotonic()
        cli(docker, config, manager, "service", "create", "--name", CLI_SERVICE, "--replicas", str(REPLICAS),
            "--update-parallelism", str(PARALLELISM), "--update-delay", f"{DELAY}s", "--init",
            "--with-registry-auth", "--env", "WHO=the bench", references[0])
        print(f"created by hand in {time.monotonic() - started:.2f} s", flush=True)
        console_service = json.loads(cli(docker, config, manager, "service", "ls", "--format", "{{json .}}",
                                         "--filter", "name=bench-u")).get("Name")
        for round_ in range(1, args.rounds + 1):
            ours_ref, theirs_ref = references[2 * round_ - 1], references[2 * round_]
            if round_ % 2:
                ours, detail = console_round(console, host, account, ours_ref)
                theirs = cli_round(docker, config, manager, theirs_ref)
            else:
                theirs = cli_round(docker, config, manager, theirs_ref)
                ours, detail = console_round(console, host, account, ours_ref)
            converged_on(swarm, console_service, ours_ref)
            converged_on(swarm, CLI_SERVICE, theirs_ref)
            rows.append((ours, theirs))
            print(f"round {round_}/{args.rounds}: console {ours:6.2f} s ({detail}; Swarm's update "
                  f"{swarm_took(swarm, console_service):.2f} s), CLI by hand {theirs:6.2f} s (Swarm's update "
                  f"{swarm_took(swarm, CLI_SERVICE):.2f} s), ratio {ours / theirs:.2f}", flush=True)
    finally:
        console.stop()
        if server is not None:
            server.stop()
        swarm.teardown()
        shutil.rmtree(work, ignore_errors=True)
        from console.engine import Engine

        with Engine.for_builds() as engine, engine.errors("Cleaning up"):
            for tag in reversed(tags):
                engine.api.remove_image(tag, force=True)
    console_median = statistics.median(ours for ours, _ in rows)
    cli_median = statistics.median(theirs for _, theirs in rows)
    ratio = console_median / cli_median
    print(f"rolling update of {REPLICAS} replicas: console median {console_median:.2f} s, CLI median "
          f"{cli_median:.2f} s, ratio {ratio:.2f} (target <= {TARGET_RATIO})")
    if ratio > TARGET_RATIO:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
