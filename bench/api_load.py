"""Benchmark: 50 concurrent API clients reading the image and build lists of a user with 1,000 of each.

Makes a throwaway database (PostgreSQL on 127.0.0.1:5432 when it answers, else SQLite), migrates it, writes
1,000 image records (5 layers each) and 1,000 builds (5 steps each) for one user directly, then serves the
console from a real server process on 127.0.0.1 (gunicorn when the venv has it, else `manage.py runserver
--noreload`, threaded; the output says which) with DEBUG off. Fifty threads, each with its own keep-alive
session and the user's personal access token, then read `GET /api/v1/images/` and `GET /api/v1/builds/` in
turn until each has made its share of the requests or the time limit is reached (a request waits at most
60 s). Prints requests/s, p50/p95/p99 latency per endpoint and overall, and the error count (target: none).
Only 127.0.0.1 is ever addressed.

    .venv/bin/python bench/api_load.py [--clients 50] [--requests 300] [--rows 1000] [--max-seconds 180]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HOST = "127.0.0.1"
ENDPOINTS = ("/api/v1/images/", "/api/v1/builds/")
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def make_database() -> tuple[str, Callable[[], None]]:
    """A fresh database: its URL and how to drop it."""
    try:
        import psycopg2

        admin = psycopg2.connect(dbname="postgres", connect_timeout=3, **POSTGRES)
    except Exception as exc:  # no PostgreSQL here: SQLite in a temporary folder
        folder = Path(tempfile.mkdtemp(prefix="console-bench-api-"))
        print(f"database: SQLite (PostgreSQL did not answer: {exc.__class__.__name__})")
        return f"sqlite:///{folder / 'bench.sqlite3'}", lambda: shutil.rmtree(folder, ignore_errors=True)
    name = f"console_bench_api_{os.getpid()}"
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    print(f"database: PostgreSQL ({name}, dropped at the end)")
    return f"postgres://{POSTGRES['user']}@{POSTGRES['host']}:{POSTGRES['port']}/{name}", drop


def seed(rows: int) -> str:
    """The user, `rows` images with 5 layers each and `rows` builds with 5 steps each; returns a raw token."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections
    from django.utils import timezone

    from builds.constants import SourceKind
    from builds.models import Build, BuildStep, Image, Layer, Repository, Source
    from builds.services.images import image_config
    from console.accounts.services import create_access_token
    from console.constants import JobStatus

    call_command("migrate", verbosity=0)
    owner = get_user_model().objects.create_user("bench", "bench@example.com", secrets.token_urlsafe(16))
    now = timezone.now()
    repository = Repository.objects.create(owner=owner, name="app")
    source = Source.objects.create(repository=repository, kind=SourceKind.ARCHIVE, archive_format="tar",
                                   sha256="0" * 64, size=10240, unpacked_size=20480, file_count=3, filename="app.tar")
    builds = Build.objects.bulk_create(
        Build(owner=owner, repository=repository, source=source, tags=[f"app:{n}"], status=JobStatus.SUCCEEDED,
              queued_at=now, started_at=now, finished_at=now, image_id=f"sha256:{n:064x}", step_count=5,
              build_args={"VERSION": str(n)}, labels={"build": str(n)}, task_id=f"task-{n}")
        for n in range(rows)
    )
    BuildStep.objects.bulk_create(
        BuildStep(build=build, number=step, instruction=f"RUN step {step}", status=JobStatus.SUCCEEDED,
                  layer_id=f"sha256:{step:064x}", started_at=now, finished_at=now)
        for build in builds for step in range(1, 6)
    )
    config = image_config({"Env": ["PATH=/bin", "WHO=bench"], "Cmd": ["httpd", "-f"], "ExposedPorts": {"8080/tcp": {}}})
    images = Image.objects.bulk_create(
        Image(owner=owner, image_id=f"sha256:{n:064x}", tags=[f"app:{n}"], size=5_000_000 + n, created=now,
              architecture="amd64", os="linux", labels={"build": str(n)}, config=config, build=build,
              repository=repository)
        for n, build in enumerate(builds)
    )
    Layer.objects.bulk_create(
        Layer(image=image, index=index, diff_id=f"sha256:{index:064x}", created_by=f"/bin/sh -c step {index}",
              size=1_000_000, created=now)
        for image in images for index in range(5)
    )
    _token, raw = create_access_token(owner, "bench")
    connections.close_all()
    return raw


def start_server(env: dict[str, str], port: int) -> tuple[subprocess.Popen, str]:
    if importlib.util.find_spec("gunicorn") is not None:
        command = [sys.executable, "-m", "gunicorn", "console.wsgi:application", "--bind", f"{HOST}:{port}",
                   "--workers", "2", "--threads", "8", "--log-level", "warning"]
        kind = "gunicorn (2 workers x 8 threads)"
    else:
        # Threaded, its default: one thread per connection.
        command = [sys.executable, "manage.py", "runserver", "--noreload", f"{HOST}:{port}"]
        kind = "manage.py runserver --noreload (threaded; gunicorn is not in the venv)"
    log = open(Path(env["CONSOLE_DATA_DIR"]) / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped: see {log.name}")
        try:
            requests.get(f"http://{HOST}:{port}/api/v1/auth/me/", timeout=1)
            return server, kind
        except requests.ConnectionError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("the server did not answer within 60 s")


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {path: [] for path in ENDPOINTS})
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def client(base: str, token: str, count: int, offset: int, deadline: float, rows: int, results: Results) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    for n in range(count):
        if time.monotonic() > deadline:
            return
        path = ENDPOINTS[(n + offset) % len(ENDPOINTS)]
        started = time.perf_counter()
        try:
            response = session.get(base + path, timeout=60)
            elapsed = time.perf_counter() - started
            problem = None if response.status_code == 200 else f"{path}: {response.status_code}"
            # Parsed once per client and endpoint: the clients share the machine's two cores with the server.
            if problem is None and n < len(ENDPOINTS) and len(response.json()) != rows:
                problem = f"{path}: {len(response.json())} rows, not {rows}"
        except (requests.RequestException, ValueError) as exc:
            elapsed, problem = time.perf_counter() - started, f"{path}: {exc.__class__.__name__}: {exc}"
        with results.lock:
            results.latencies[path].append(elapsed)
            if problem:
                results.errors.append(problem)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def report(label: str, values: list[float], seconds: float) -> None:
    if not values:
        print(f"{label:<18} no requests")
        return
    print(f"{label:<18} {len(values):>6} requests  {len(values) / seconds:8.1f} req/s  "
          f"p50 {percentile(values, 0.50) * 1000:8.1f} ms  p95 {percentile(values, 0.95) * 1000:8.1f} ms  "
          f"p99 {percentile(values, 0.99) * 1000:8.1f} ms  mean {statistics.fmean(values) * 1000:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=300, help="in all, shared by the clients")
    parser.add_argument("--rows", type=int, default=1000, help="images and builds of the user, each")
    parser.add_argument("--max-seconds", type=float, default=180, help="the load stops by itself after this")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="console-bench-api-data-"))
    database_url, drop_database = make_database()
    env = {**os.environ, "DATABASE_URL": database_url, "CONSOLE_DATA_DIR": str(data_dir),
           "DJANGO_SETTINGS_MODULE": "console.settings", "DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50),
           "ALLOWED_HOSTS": HOST, "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    os.environ.update({key: env[key] for key in ("DATABASE_URL", "CONSOLE_DATA_DIR", "DJANGO_SETTINGS_MODULE",
                                                 "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "LOG_LEVEL")})
    server = None
    try:
        started = time.perf_counter()
        token = seed(args.rows)
        print(f"seeded {args.rows} images (5 layers each) and {args.rows} builds (5 steps each) "
              f"in {time.perf_counter() - started:.1f} s")
        port = free_port()
        server, kind = start_server(env, port)
        print(f"server: {kind} on {HOST}:{port}")
        base = f"http://{HOST}:{port}"
        results = Results()
        share, extra = divmod(args.requests, args.clients)
        deadline = time.monotonic() + args.max_seconds
        threads = [
            threading.Thread(target=client, args=(base, token, share + (n < extra), n, deadline, args.rows, results))
            for n in range(args.clients)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        drop_database()
        shutil.rmtree(data_dir, ignore_errors=True)

    every = [value for values in results.latencies.values() for value in values]
    print(f"{args.clients} clients, {len(every)} requests in {seconds:.1f} s"
          f"{' (stopped by the time limit)' if len(every) < args.requests else ''}")
    for path, values in results.latencies.items():
        report(path, values, seconds)
    report("all", every, seconds)
    print(f"errors: {len(results.errors)}")
    for problem in sorted(set(results.errors))[:10]:
        print(f"  {problem}")
    if results.errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
