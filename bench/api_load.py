"""Benchmark: 50 concurrent API clients reading the first page of the image and build lists, and a filtered page
of each, for a user with 1,000 and then 10,000 of each: the p95 must not grow with the rows.

Makes a throwaway database (PostgreSQL on 127.0.0.1:5432 when it answers, else SQLite), migrates it, writes image
records (5 layers each) and builds (5 steps each) for one user directly (then VACUUM ANALYZE, as autovacuum would), and
serves the console from a real server process on 127.0.0.1 (gunicorn 2 workers x 8 threads when the venv has it,
else `manage.py runserver --noreload`; the output says which) with DEBUG off. Fifty threads, each with its own
keep-alive session and the user's personal access token, run two loads per size:
- paced (the target's load): each client reads, in turn, `GET /api/v1/images/` and `GET /api/v1/builds/` (their
  first page, 50 rows) and a filtered page of each (`?q=app:7`, `?status=succeeded&q=app:7`), one request every
  `--pace` seconds (1 s), as people and scripts that look at a list do;
- all out: the same clients, each request as soon as the last one is answered, the largest page a client may ask
  for (`?page_size=500`) too: what the server can take, and whether that grows with the rows.
Then the rows are topped up to the next size (`--rows 1000,10000`) and both loads run again on the same server.
Prints requests/s and p50/p95/p99 per endpoint, load and size, the p95s side by side, the target (p95 of the
first and filtered pages under 150 ms in the paced load at every size) and the error count (target: none).
The clients share the machine's cores with the server. Only 127.0.0.1 is ever addressed.

    .venv/bin/python bench/api_load.py [--clients 50] [--requests 600] [--rows 1000,10000] [--pace 1]
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
# console.pagination's, not imported from there: importing the console package loads its settings, and this
# process must not before main() has pointed DATABASE_URL at the throwaway database.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
TARGET_P95_MS = 150
# Each list as most clients read it (its first page), a filtered page (tags holding "app:7": app:7, app:70...),
# and at its heaviest (the largest page), with the rows each page holds: None for a filtered one, which holds what
# matches. The target is for the first and the filtered pages.
ENDPOINTS = {
    "/api/v1/images/": DEFAULT_PAGE_SIZE, "/api/v1/builds/": DEFAULT_PAGE_SIZE,
    "/api/v1/images/?q=app:7": None, "/api/v1/builds/?status=succeeded&q=app:7": None,
    f"/api/v1/images/?page_size={MAX_PAGE_SIZE}": MAX_PAGE_SIZE,
    f"/api/v1/builds/?page_size={MAX_PAGE_SIZE}": MAX_PAGE_SIZE,
}
TARGETED = [path for path in ENDPOINTS if "page_size" not in path]
PATHS = tuple(ENDPOINTS)
LABEL_WIDTH = max(len(path) for path in PATHS)
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


def seed(rows: int, start: int = 0) -> str:
    """The user (made when `start` is 0; returns a raw token then), and images `start` to `rows` with 5 layers each
    and builds with 5 steps each."""
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

    if start == 0:
        call_command("migrate", verbosity=0)
        owner = get_user_model().objects.create_user("bench", "bench@example.com", secrets.token_urlsafe(16))
        repository = Repository.objects.create(owner=owner, name="app")
        Source.objects.create(repository=repository, kind=SourceKind.ARCHIVE, archive_format="tar", sha256="0" * 64,
                              size=10240, unpacked_size=20480, file_count=3, filename="app.tar")
    owner = get_user_model().objects.get(username="bench")
    repository = Repository.objects.get(owner=owner)
    source = repository.sources.get()
    now = timezone.now()
    builds = Build.objects.bulk_create(
        Build(owner=owner, repository=repository, source=source, tags=[f"app:{n}"], status=JobStatus.SUCCEEDED,
              queued_at=now, started_at=now, finished_at=now, image_id=f"sha256:{n:064x}", step_count=5,
              build_args={"VERSION": str(n)}, labels={"build": str(n)}, task_id=f"task-{n}")
        for n in range(start, rows)
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
        for n, build in enumerate(builds, start=start)
    )
    Layer.objects.bulk_create(
        Layer(image=image, index=index, diff_id=f"sha256:{index:064x}", created_by=f"/bin/sh -c step {index}",
              size=1_000_000, created=now)
        for image in images for index in range(5)
    )
    raw = create_access_token(owner, "bench")[1] if start == 0 else ""
    if connections["default"].vendor == "postgresql":
        # As autovacuum soon does after so many inserts (autovacuum_vacuum_insert_threshold): the planner's
        # statistics of the tables just filled, and their visibility map, without which a count reads the table.
        with connections["default"].cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
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


def client(base: str, token: str, count: int, offset: int, deadline: float, rows: int, results: Results,
           paths: tuple[str, ...], pace: float, first_delay: float) -> None:
    """`count` requests to `paths` in turn: each as soon as the last one is answered (pace 0), or one every `pace`
    seconds (a person or a script that reads a list every so often; a late answer delays no later request)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    next_start = time.monotonic() + first_delay
    for n in range(count):
        if pace:
            time.sleep(max(0.0, next_start - time.monotonic()))
            next_start += pace
        if time.monotonic() > deadline:
            return
        path = paths[(n + offset) % len(paths)]
        started = time.perf_counter()
        try:
            response = session.get(base + path, timeout=60)
            elapsed = time.perf_counter() - started
            problem = None if response.status_code == 200 else f"{path}: {response.status_code}"
            # Parsed once per client and endpoint: the clients share the machine's two cores with the server.
            if problem is None and n < len(paths):
                body = response.json()
                size = ENDPOINTS[path]
                if size is None:
                    # app:7, app:70..app:79, app:700...: never none, never all.
                    if not 0 < body["count"] < rows or len(body["results"]) != min(body["count"], DEFAULT_PAGE_SIZE):
                        problem = f"{path}: {len(body['results'])} rows of {body['count']} matching"
                elif body["count"] != rows or len(body["results"]) != min(rows, size):
                    problem = f"{path}: {len(body['results'])} rows of {body['count']}, not {min(rows, size)} of {rows}"
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
        print(f"{label:<{LABEL_WIDTH}} no requests")
        return
    print(f"{label:<{LABEL_WIDTH}} {len(values):>6} requests  {len(values) / seconds:8.1f} req/s  "
          f"p50 {percentile(values, 0.50) * 1000:8.1f} ms  p95 {percentile(values, 0.95) * 1000:8.1f} ms  "
          f"p99 {percentile(values, 0.99) * 1000:8.1f} ms  mean {statistics.fmean(values) * 1000:8.1f} ms")


def run_load(base: str, token: str, rows: int, args: argparse.Namespace, paths: tuple[str, ...],
             pace: float) -> tuple[Results, float]:
    results = Results()
    share, extra = divmod(args.requests, args.clients)
    deadline = time.monotonic() + args.max_seconds
    threads = [
        # Paced clients start spread over one interval, as people do, not all in the same millisecond.
        threading.Thread(target=client, args=(base, token, share + (n < extra), n, deadline, rows, results, paths,
                                              pace, pace * n / args.clients))
        for n in range(args.clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=600, help="in all per size and load, shared by the clients")
    parser.add_argument("--rows", default="1000,10000",
                        help="images and builds of the user, each: the sizes to measure, comma-separated")
    parser.add_argument("--pace", type=float, default=1.0,
                        help="seconds between a paced client's requests (the target's load)")
    parser.add_argument("--max-seconds", type=float, default=180, help="each load stops by itself after this")
    args = parser.parse_args()
    sizes = sorted({int(size) for size in args.rows.split(",") if size.strip()})
    # The target's load: the first and the filtered pages, each client one request every `pace` seconds. Then
    # the same clients as fast as the server answers, the largest pages too: what the server can take.
    loads = {f"paced, one request per client every {args.pace:g} s": (tuple(TARGETED), args.pace),
             "all out, each request as soon as the last is answered": (PATHS, 0.0)}

    data_dir = Path(tempfile.mkdtemp(prefix="console-bench-api-data-"))
    database_url, drop_database = make_database()
    env = {**os.environ, "DATABASE_URL": database_url, "CONSOLE_DATA_DIR": str(data_dir),
           "DJANGO_SETTINGS_MODULE": "console.settings", "DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50),
           "ALLOWED_HOSTS": HOST, "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
           # As deploy/console.env.sample runs production: each server thread keeps its database connection.
           "DATABASE_CONN_MAX_AGE": "60"}
    os.environ.update({key: env[key] for key in ("DATABASE_URL", "CONSOLE_DATA_DIR", "DJANGO_SETTINGS_MODULE",
                                                 "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "LOG_LEVEL")})
    server = None
    measured: dict[tuple[str, int], tuple[Results, float]] = {}
    token, seeded = "", 0
    try:
        for size in sizes:
            started = time.perf_counter()
            token = seed(size, seeded) or token
            print(f"seeded images and builds {seeded} to {size} (5 layers, 5 steps each) "
                  f"in {time.perf_counter() - started:.1f} s")
            seeded = size
            if server is None:
                port = free_port()
                server, kind = start_server(env, port)
                print(f"server: {kind} on {HOST}:{port}")
                base = f"http://{HOST}:{port}"
            for load, (paths, pace) in loads.items():
                measured[load, size] = run_load(base, token, size, args, paths, pace)
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

    errors: list[str] = []
    for (load, size), (results, seconds) in measured.items():
        every = [value for values in results.latencies.values() for value in values]
        print(f"\n{load}: {size} rows each, {args.clients} clients, {len(every)} requests in {seconds:.1f} s"
              f"{' (stopped by the time limit)' if len(every) < args.requests else ''}")
        for path, values in results.latencies.items():
            if values:
                report(path, values, seconds)
        report("all", every, seconds)
        errors += results.errors
    for load, (paths, _pace) in loads.items():
        print(f"\np95 by size (ms), {load}:")
        print(f"{'':<{LABEL_WIDTH}} " + "".join(f"{size:>10}" for size in sizes))
        for path in paths:
            cells = [measured[load, size][0].latencies[path] for size in sizes]
            print(f"{path:<{LABEL_WIDTH}} " + "".join(f"{percentile(v, 0.95) * 1000:10.1f}" if v else f"{'-':>10}"
                                                     for v in cells))
    target_load = next(iter(loads))
    worst = max(percentile(measured[target_load, size][0].latencies[path], 0.95) * 1000
                for size in sizes for path in TARGETED if measured[target_load, size][0].latencies[path])
    print(f"\nworst p95 of the first and filtered pages, {target_load}: {worst:.1f} ms "
          f"(target < {TARGET_P95_MS} ms at every size)")
    print(f"errors: {len(errors)}")
    for problem in sorted(set(errors))[:10]:
        print(f"  {problem}")
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
