"""Benchmark: what the console adds to a build, and how fast its log reaches a reader.

The same 10-step context is built in turn by `docker build` (classic builder, DOCKER_BUILDKIT=0, --no-cache),
by `docker build` with the three labels the console puts on every image (each label is one more step for the
classic builder), and by the console (API request to `succeeded`: Celery over Redis, a real worker,
PostgreSQL), five rounds, in one run on the same engine. It prints the medians and the ratio of the console to
the like-for-like CLI build (target <= 1.10), and to the plain one.

Then one console build whose RUN step prints the host's /proc/uptime every 100 ms; the benchmark polls the log
endpoint every 50 ms and prints the p95 delay from the line's own timestamp to the endpoint returning it
(target < 1 s).

Run: .venv/bin/python bench/build_overhead.py   (needs PostgreSQL and Redis on 127.0.0.1, as `make test` does)
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIRS = 5
FINAL = ("succeeded", "failed", "cancelled")
DOCKERFILE = """FROM busybox:1.35.0
ENV APP=/app
RUN mkdir -p /app/data && echo one > /app/data/one
COPY files/ /app/files/
RUN cat /app/files/* > /app/all
WORKDIR /app
RUN sh -c 'for i in 1 2 3 4 5; do echo $i >> counts; done'
LABEL bench=build-overhead
RUN ls -la /app > /app/listing
CMD ["cat", "/app/all"]
"""
TICKER = """FROM busybox:1.35.0
RUN for i in $(seq 1 40); do echo "tick $(cut -d' ' -f1 /proc/uptime)"; sleep 0.1; done
"""


def context_files(dockerfile: str) -> dict[str, bytes]:
    files = {"Dockerfile": dockerfile.encode()}
    for n in range(5):
        files[f"files/f{n}.txt"] = f"file {n}\n".encode() * 200
    return files


def tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-build-"))
    database = f"console_bench_{uuid.uuid4().hex[:8]}"
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {database}"], check=True)
    env = {**os.environ, "CONSOLE_DATA_DIR": str(work / "data"), "DJANGO_SETTINGS_MODULE": "console.settings",
           "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
           "CELERY_BROKER_URL": "redis://127.0.0.1:6379/14", "CELERY_DEFAULT_QUEUE": f"bench-{database}",
           "BUILDS_QUEUE": f"bench-builds-{database}", "LOG_LEVEL": "WARNING",
           "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost"}
    os.environ.update(env)
    worker = None
    images: list[str] = []
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "console", "worker", "-Q",
             f"{env['CELERY_DEFAULT_QUEUE']},{env['BUILDS_QUEUE']}", "-c", "1", "--without-gossip",
             "--without-mingle", "--loglevel=WARNING"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.utils import timezone
        from rest_framework.test import APIClient

        from builds.models import Build, Image
        from builds.services import repositories

        user = get_user_model().objects.create_user("bench", "bench@example.com", "bench-password-1")
        client = APIClient()
        client.force_authenticate(user)
        repository = repositories.create_repository(user, "bench")
        source = repositories.add_archive_source(repository, io.BytesIO(tar_of(context_files(DOCKERFILE))), "b.tar")
        ticker_archive = io.BytesIO(tar_of({"Dockerfile": TICKER.encode()}))
        ticker = repositories.add_archive_source(repository, ticker_archive, "t.tar")
        cli_dir = work / "cli"
        cli_dir.mkdir()
        for name, data in context_files(DOCKERFILE).items():
            (cli_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (cli_dir / name).write_bytes(data)

        def console_build(source_id: int, poll: float = 0.5) -> tuple[float, Build]:
            # Timed from the API request to the moment the worker recorded the build as finished (the same
            # clock): polling lazily keeps the benchmark's own requests from taking CPU from the engine.
            requested = timezone.now()
            response = client.post("/api/v1/builds/", {"source": source_id, "no_cache": True}, format="json")
            assert response.status_code == 202, response.content[:300]
            build_id = response.json()["id"]
            while client.get(f"/api/v1/builds/{build_id}/").json()["status"] not in FINAL:
                time.sleep(poll)
            build = Build.objects.get(pk=build_id)
            if build.image_id:
                images.append(build.image_id)
            assert build.status == "succeeded", build.error
            return (build.finished_at - requested).total_seconds(), build

        def cli_build(labels: list[str]) -> float:
            started = time.perf_counter()
            result = subprocess.run(["docker", "build", "-q", "--no-cache", *labels, str(cli_dir)],
                                    capture_output=True, text=True, env={**os.environ, "DOCKER_BUILDKIT": "0"},
                                    check=True)
            elapsed = time.perf_counter() - started
            images.append(result.stdout.strip().splitlines()[-1])
            return elapsed

        _, warm = console_build(source.pk)  # warm-up: the worker's first task imports everything
        # The console labels every image (created, revision, build id): the engine adds a LABEL step for each,
        # so the like-for-like reference passes the same three labels; plain `docker build` is printed too.
        same_labels = [f"--label={key}={value}" for key, value in Image.objects.get(build=warm).labels.items()
                       if key.startswith(("org.opencontainers.", "io.console."))]
        plain_times, cli_times, console_times = [], [], []
        for _ in range(PAIRS):
            plain_times.append(cli_build([]))
            cli_times.append(cli_build(same_labels))
            console_times.append(console_build(source.pk)[0])
        # Where the console's time goes, for the last build: before the engine starts, and after it is done.
        _, last = console_build(source.pk)
        steps = list(last.steps.order_by("number"))
        breakdown = (f"queued->claimed {(last.started_at - last.queued_at).total_seconds():.3f} s, "
                     f"claimed->step 1 {(steps[0].started_at - last.started_at).total_seconds():.3f} s, "
                     f"engine steps {(steps[-1].finished_at - steps[0].started_at).total_seconds():.3f} s, "
                     f"last step->finished {(last.finished_at - steps[-1].finished_at).total_seconds():.3f} s")
        plain_median = statistics.median(plain_times)
        cli_median, console_median = statistics.median(cli_times), statistics.median(console_times)

        # Log latency: poll the log endpoint and compare each tick's own timestamp with when it arrived.
        response = client.post("/api/v1/builds/", {"source": ticker.pk, "no_cache": True}, format="json")
        build_id, offset, delays = response.json()["id"], 0, []
        while True:
            chunk = client.get(f"/api/v1/builds/{build_id}/log/?offset={offset}").json()
            now = uptime()
            for line in chunk["lines"]:
                if line.startswith("tick "):
                    delays.append(now - float(line.split()[1]))
            offset = chunk["next_offset"]
            if chunk["finished"]:
                break
            time.sleep(0.05)
        delays.sort()
        p95 = delays[int(0.95 * (len(delays) - 1))]

        print(f"docker build (classic, no cache): median {plain_median:6.2f} s  {[round(t, 2) for t in plain_times]}")
        print(f"  the same with the 3 labels    : median {cli_median:6.2f} s  {[round(t, 2) for t in cli_times]}")
        print(f"console build (API to succeeded): median {console_median:6.2f} s  "
              f"{[round(t, 2) for t in console_times]}")
        print(f"ratio console / docker + labels : {console_median / cli_median:6.2f}  (target <= 1.10)")
        print(f"ratio console / plain docker    : {console_median / plain_median:6.2f}")
        print(f"console build breakdown         : {breakdown}")
        print(f"log line to API, p95 of {len(delays)} lines : {p95:6.3f} s  (target < 1 s; max {delays[-1]:.3f} s)")
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        for image in set(images):
            subprocess.run(["docker", "rmi", "-f", image], capture_output=True)
        from django.db import connections

        connections.close_all()
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {database}"])
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
