"""Benchmark: the whole path a user walks, upload -> build -> deploy to three hosts -> each host answers, through the
console and by hand with the Docker CLI, in one run on the same engines.

Starts three real engines in network namespaces (tests/fixtures/fleet.py) as fleet hosts, and the console as
`make run` runs it: a throwaway data folder with SQLite and the filesystem broker, gunicorn, and one Celery worker
(queues celery and builds, concurrency 2) on the machine's build engine. Then, for `--rounds` rounds, each with a
fresh nonce file in the app (so neither side's build is served from the other's cache) and hosts that hold
neither the image nor a container (so both sides copy it):

(a) the console, through its REST API as a script would: upload the app as a tar.gz, queue a build, wait for it,
    deploy the image to the three hosts with WHO set, and wait until every host answers HTTP with the greeting;
(b) a person with the CLI, in sequence: `tar -xzf`, `DOCKER_BUILDKIT=1 docker build`, then for each host
    `docker save | docker -H <host> load` and `docker -H <host> run -d -p ... -e WHO=...`, until each answers.

Prints both times per round, their medians and the ratio console/CLI (target: at most 1.0; the console serves the
hosts in parallel and waits for no person). The app is examples/hello, or another folder with a Dockerfile that
answers HTTP on port 8080 (`--app path`; its response must contain WHO's value). Run as root:

    .venv/bin/python bench/pipeline.py [--rounds 3] [--app examples/hello]
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"
TARGET_RATIO = 1.0
APP_PORT = 8080
CONSOLE_PORT, CLI_PORT = 8780, 8781
TIMEOUT = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def answers(url: str, who: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own fleet's addresses only
            return who in response.read().decode(errors="replace")
    except OSError:
        return False


def wait_until_all_answer(urls: list[str], who: str, deadline: float) -> None:
    pending = list(urls)
    while pending:
        pending = [url for url in pending if not answers(url, who)]
        if pending and time.monotonic() > deadline:
            raise SystemExit(f"no answer with {who!r} from {', '.join(pending)}")
        if pending:
            time.sleep(0.05)


def app_archive(app: Path, nonce: str) -> bytes:
    """The app as a tar.gz, with a nonce file that makes its build context new to the engine's cache."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(app, arcname=".")
        data = nonce.encode()
        info = tarfile.TarInfo("bench-nonce")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Console:
    """The console as `make run` runs it, in a throwaway data folder, with one user and an API token."""

    def __init__(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="console-bench-pipeline-"))
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.env = {
            **os.environ, "CONSOLE_DATA_DIR": str(self.data_dir), "CONSOLE_EMBEDDED": "true", "DEBUG": "false",
            "DATABASE_URL": f"sqlite:///{self.data_dir / 'console.sqlite3'}", "ALLOWED_HOSTS": HOST,
            "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "console.settings",
            "SESSION_COOKIE_SECURE": "false", "CSRF_COOKIE_SECURE": "false",
        }
        for key in ("CELERY_BROKER_URL", "DATABASE_CONN_MAX_AGE"):
            self.env.pop(key, None)
        self.processes: list[subprocess.Popen] = []
        self.session = requests.Session()

    def manage(self, *args: str) -> str:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True,
                              capture_output=True, text=True).stdout

    def start(self) -> None:
        self.manage("migrate", "--no-input")
        token = self.manage("shell", "-c", (
            "from django.contrib.auth import get_user_model; from console.accounts.services import "
            "create_access_token; user = get_user_model().objects.create_user('bench', 'bench@example.com', "
            f"'{secrets.token_urlsafe(16)}'); print(create_access_token(user, 'bench')[1])"
        )).strip().splitlines()[-1]
        self.session.headers["Authorization"] = f"Token {token}"
        self._spawn("worker", [sys.executable, "-m", "celery", "-A", "console", "worker", "--concurrency=2",
                               "-Q", "celery,builds", "--without-gossip", "--without-mingle", "--loglevel=INFO",
                               "-n", "bench@pipeline"])
        self._spawn("server", [sys.executable, "-m", "gunicorn", "console.wsgi:application", "--bind",
                               f"{HOST}:{self.port}", "--workers", "2", "--threads", "4", "--log-level", "warning"])
        deadline = time.monotonic() + 60
        while True:
            if any(process.poll() is not None for process in self.processes):
                raise SystemExit(f"the console stopped while starting: see {self.data_dir}/*.log")
            try:
                if self.session.get(f"{self.base}/api/v1/auth/me/", timeout=1).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or its workers still loading
            if time.monotonic() > deadline:
                raise SystemExit("the console did not answer within 60 s")
            time.sleep(0.2)
        # The worker is ready when it says so; before that a queued build would wait for it, unfairly.
        worker_log = self.data_dir / "worker.log"
        while "ready." not in worker_log.read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start: see {worker_log}")
            time.sleep(0.2)

    def _spawn(self, name: str, command: list[str]) -> None:
        output = open(self.data_dir / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        self.processes.append(subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=output,
                                               stderr=subprocess.STDOUT, start_new_session=True))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def api(self, method: str, path: str, **kwargs) -> dict:
        response = self.session.request(method, f"{self.base}/api/v1/{path}", timeout=60, **kwargs)
        if response.status_code >= 400:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def wait_for(self, path: str, deadline: float, poll: float = 0.1) -> dict:
        while True:
            job = self.api("GET", path)
            if job["status"] in ("succeeded", "failed", "cancelled"):
                if job["status"] != "succeeded":
                    raise SystemExit(f"{path} {job['status']}: {job.get('error')}")
                return job
            if time.monotonic() > deadline:
                raise SystemExit(f"{path} still {job['status']} after {TIMEOUT} s")
            time.sleep(poll)


def console_round(console: Console, repository: int, hosts: list[int], addresses: list[str], archive: bytes,
                  who: str) -> float:
    started = time.monotonic()
    deadline = started + TIMEOUT
    source = console.api("POST", f"repositories/{repository}/sources/",
                         files={"archive": ("app.tar.gz", archive, "application/gzip")})
    build = console.api("POST", "builds/", json={"source": source["id"], "tags": [f"app:{who.split()[-1]}"]})
    uploaded = time.monotonic()
    build = console.wait_for(f"builds/{build['id']}/", deadline)
    built = time.monotonic()
    image = build["image_id"] or build["tags"][0]
    deployment = console.api("POST", "deployments/", json={
        "name": "app", "image": image, "hosts": hosts, "ports": {f"{APP_PORT}/tcp": CONSOLE_PORT},
        "env": {"WHO": who}})
    deployment = console.wait_for(f"deployments/{deployment['id']}/", deadline)
    deployed = time.monotonic()
    wait_until_all_answer([f"http://{address}:{CONSOLE_PORT}/" for address in addresses], who, deadline)
    done = time.monotonic()
    queued = [_moment(job["started_at"]) - _moment(job.get("queued_at") or job["created"])
              for job in (build, deployment)]
    host_times = ", ".join(f"{_moment(target['finished_at']) - _moment(target['started_at']):.2f}"
                           for target in deployment["targets"])
    print(f"  console: upload {uploaded - started:.2f} s, build {built - uploaded:.2f} s "
          f"(queued {queued[0]:.2f}), "
          f"deploy {deployed - built:.2f} s (queued {queued[1]:.2f}; hosts {host_times}), "
          f"answer {done - deployed:.2f} s")
    return done - started


def _moment(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def cli_round(docker: str, build_host: str, fleet_urls: list[str], addresses: list[str], archive: bytes,
              who: str, work: Path) -> float:
    """What a person types, one command after the other; the archive is on disk as an upload would be."""
    upload = work / "app.tar.gz"
    upload.write_bytes(archive)
    folder = work / "app"
    started = time.monotonic()
    deadline = started + TIMEOUT
    folder.mkdir()
    subprocess.run(["tar", "-xzf", str(upload), "-C", str(folder)], check=True)
    tag = f"console-bench-cli/app:{who.split()[-1]}"
    subprocess.run([docker, "-H", build_host, "build", "-q", "-t", tag, str(folder)], check=True,
                   capture_output=True, env={**os.environ, "DOCKER_BUILDKIT": "1"})
    for url, address in zip(fleet_urls, addresses, strict=True):
        save = subprocess.Popen([docker, "-H", build_host, "save", tag], stdout=subprocess.PIPE)
        subprocess.run([docker, "-H", url, "load", "-q"], stdin=save.stdout, check=True, capture_output=True)
        save.stdout.close()
        if save.wait() != 0:
            raise SystemExit("docker save failed")
        subprocess.run([docker, "-H", url, "run", "-d", "--name", "cli-app", "-p", f"{CLI_PORT}:{APP_PORT}",
                        "-e", f"WHO={who}", tag], check=True, capture_output=True)
        # As soon as it answers, the next host: a person watching would go on the moment it does.
        wait_until_all_answer([f"http://{address}:{CLI_PORT}/"], who, deadline)
    elapsed = time.monotonic() - started
    subprocess.run([docker, "-H", build_host, "rmi", "-f", tag], capture_output=True)
    return elapsed


def hosts_as_new(fleet) -> None:
    """No container and no image on any host (the base image's layers included), before each side's turn: both
    copy the whole image to every host, and neither finds what the other loaded."""
    for host in fleet:
        host.remove_all_containers()
        with host.engine() as engine:
            for image in engine.api.images():
                engine.api.remove_image(image["Id"], force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--app", type=Path, default=ROOT / "examples" / "hello")
    args = parser.parse_args()
    if not (args.app / "Dockerfile").is_file():
        raise SystemExit(f"{args.app} has no Dockerfile")
    # Debian's CLI 20.10, whose DOCKER_BUILDKIT=1 drives the engine's BuildKit as the console's builds do
    # (a newer CLI on PATH wants buildx for that).
    docker = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else shutil.which("docker") or "docker"

    from tests.fixtures.fleet import start_fleet

    work = Path(tempfile.mkdtemp(prefix="console-bench-pipeline-cli-"))
    fleet = start_fleet([{"label": f"h{n}"} for n in range(1, 4)])
    console = Console()
    rows: list[tuple[float, float]] = []
    try:
        console.start()
        build_host = console.env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        print(f"fleet: {', '.join(host.address for host in fleet)}; build engine {build_host}; "
              f"console on {console.base} (SQLite, filesystem broker, gunicorn, one worker)")
        repository = console.api("POST", "repositories/", json={"name": "app"})["id"]
        hosts = [console.api("POST", "hosts/", json={"name": host.label, "url": host.url})["id"] for host in fleet]
        addresses = [host.address for host in fleet]
        for round_ in range(1, args.rounds + 1):
            hosts_as_new(fleet)
            ours = console_round(console, repository, hosts, addresses,
                                 app_archive(args.app, secrets.token_hex(8)), f"console round {round_}")
            shutil.rmtree(work / "app", ignore_errors=True)
            hosts_as_new(fleet)
            theirs = cli_round(docker, build_host, [host.url for host in fleet], addresses,
                               app_archive(args.app, secrets.token_hex(8)), f"cli round {round_}", work)
            rows.append((ours, theirs))
            print(f"round {round_}/{args.rounds}: console {ours:6.2f} s, CLI by hand {theirs:6.2f} s, "
                  f"ratio {ours / theirs:.2f}")
    finally:
        console.stop()
        fleet.teardown()
        shutil.rmtree(work, ignore_errors=True)
    console_median = statistics.median(ours for ours, _ in rows)
    cli_median = statistics.median(theirs for _, theirs in rows)
    ratio = console_median / cli_median
    print(f"upload -> build -> 3 hosts answering: console median {console_median:.2f} s, "
          f"CLI median {cli_median:.2f} s, ratio {ratio:.2f} (target <= {TARGET_RATIO})")
    if ratio > TARGET_RATIO:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
