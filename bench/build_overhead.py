"""Benchmark: what the console adds to a build, on either builder, and how fast its log reaches a reader.

One run, one engine, five rounds, medians. The same 10-instruction context is built, with no cache, by:
- BuildKit (the default builder): the console (API request with no limits to `succeeded`: Celery over Redis, a
  real worker, PostgreSQL; the worker runs the Docker CLI's BuildKit client, then records the image from its
  inspect and history and links the steps to their layers; no secrets here, so no leak check) against
  `DOCKER_BUILDKIT=1 /usr/bin/docker build --no-cache --progress=plain --iidfile=...` with the labels the console
  puts on every image (builds/runner/build.py `image_labels`: org.opencontainers.image.created, .revision,
  .source for a git source only, so not here, and io.console.build-id), once from a tar on standard input
  (`docker build -f Dockerfile - < context.tar`, as the console sends it) and once from a directory.
  Target: console / CLI from the tar at most 1.05. The median of the rounds' own ratios is printed too (the
  engine of a shared machine has slow spells), and the console goes first in every other round.
- the classic builder, as before: the console with `builder: "classic"` against `DOCKER_BUILDKIT=0 docker build
  --no-cache` with the same labels (each label is one more step for the classic builder) and without them.
  Target: console / CLI with labels at most 1.10.
The console's builds ask for `no_cache: true`, as the CLI's run `--no-cache`, so both do the same work; after each
one the benchmark waits for the image analysis the worker runs next, so that it takes no CPU from the next build.
A console BuildKit build's time is split into phases from the times it recorded (API, worker pickup, up to its
first step, the steps, up to the image's record, the rest), and the CLI's from the times its progress lines
arrive (up to the first step, the steps, exporting and exit); medians.

Then one console build whose RUN step prints the host's /proc/uptime every 100 ms; the benchmark polls the log
endpoint every 50 ms and prints the p95 delay from the line's own timestamp to the endpoint returning it
(target < 1 s).

Run: .venv/bin/python bench/build_overhead.py   (needs PostgreSQL and Redis on 127.0.0.1, as `make test` does;
BENCH_DATABASE names the scratch database, dropped first and after, else a random one; BENCH_REDIS_DB the Redis
db, 14 unless told)
"""

from __future__ import annotations

import io
import os
import re
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
BUILDKIT_CLI = "/usr/bin/docker"  # Debian's CLI 20.10, the one the console drives (console/engine/buildkit.py)
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
# BuildKit's plain progress: a step's name (`#5 [2/6] RUN ...`) and a vertex's end (`#5 DONE 0.3s`, `#5 CACHED`).
STEP_LINE = re.compile(rb"#(\d+) \[(?:\S+ )?\d+/\d+\] ")
DONE_LINE = re.compile(rb"#(\d+) (?:DONE|CACHED)")
# A tick in the build's log: as the RUN printed it (classic), or behind its vertex's number (BuildKit).
TICK_LINE = re.compile(r"(?:#\d+ )?tick (\d+\.\d+)")


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


def median_of(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def series(times: list[float]) -> str:
    return f"median {statistics.median(times):6.2f} s  {[round(t, 2) for t in times]}"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-build-"))
    database = os.environ.get("BENCH_DATABASE") or f"console_bench_{uuid.uuid4().hex[:8]}"
    redis_db = os.environ.get("BENCH_REDIS_DB", "14")
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {database}"],
                   check=True)
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {database}"], check=True)
    env = {**os.environ, "CONSOLE_DATA_DIR": str(work / "data"), "DJANGO_SETTINGS_MODULE": "console.settings",
           "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
           "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{redis_db}", "CELERY_DEFAULT_QUEUE": f"bench-{database}",
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

        from builds.models import Build, Image, ImageAnalysis
        from builds.services import repositories

        user = get_user_model().objects.create_user("bench", "bench@example.com", "bench-password-1")
        client = APIClient()
        client.force_authenticate(user)
        repository = repositories.create_repository(user, "bench")
        context_tar = tar_of(context_files(DOCKERFILE))
        source = repositories.add_archive_source(repository, io.BytesIO(context_tar), "b.tar")
        ticker_archive = io.BytesIO(tar_of({"Dockerfile": TICKER.encode()}))
        ticker = repositories.add_archive_source(repository, ticker_archive, "t.tar")
        cli_dir = work / "cli"
        cli_dir.mkdir()
        for name, data in context_files(DOCKERFILE).items():
            (cli_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (cli_dir / name).write_bytes(data)

        def console_build(source_id: int, builder: str = "auto", poll: float = 0.5) -> tuple[float, Build]:
            # Timed from the API request to the moment the worker recorded the build as finished (the same
            # clock): polling lazily keeps the benchmark's own requests from taking CPU from the engine.
            requested = timezone.now()
            response = client.post("/api/v1/builds/", {"source": source_id, "no_cache": True, "builder": builder},
                                   format="json")
            assert response.status_code == 202, response.content[:300]
            build_id = response.json()["id"]
            while client.get(f"/api/v1/builds/{build_id}/").json()["status"] not in FINAL:
                time.sleep(poll)
            build = Build.objects.get(pk=build_id)
            if build.image_id:
                images.append(build.image_id)
            assert build.status == "succeeded", build.error
            build.requested_at = requested
            # The worker analyses every image it built (a job of its own on the default queue, after the build):
            # wait for it, so that it takes no CPU from the next build, the console's or the CLI's.
            deadline = time.monotonic() + 120
            while (ImageAnalysis.objects.filter(image__build=build).exclude(status__in=FINAL).exists()
                   or not ImageAnalysis.objects.filter(image__build=build).exists()) and time.monotonic() < deadline:
                time.sleep(0.2)
            return (build.finished_at - requested).total_seconds(), build

        def console_phases(build: Build) -> dict[str, float]:
            """Where a console BuildKit build's time goes, from the times it recorded (one clock)."""
            steps = list(build.steps.order_by("started_at"))
            first = steps[0].started_at
            last = max(step.finished_at for step in steps if step.finished_at)
            recorded = Image.objects.get(build=build).recorded
            return {"api": (build.queued_at - build.requested_at).total_seconds(),
                    "pickup": (build.started_at - build.queued_at).total_seconds(),
                    "to_first_step": (first - build.started_at).total_seconds(),
                    "steps": (last - first).total_seconds(),
                    "export_record": (recorded - last).total_seconds(),
                    "after_record": (build.finished_at - recorded).total_seconds(),
                    "total": (build.finished_at - build.requested_at).total_seconds()}

        def cli_buildkit(labels: list[str], from_tar: bool) -> tuple[float, dict[str, float]]:
            # As the console runs it: plain progress (read here, each line timed), --iidfile, the context from
            # a tar on standard input or from a directory.
            iidfile = work / f"iid-{uuid.uuid4().hex[:8]}"
            argv = [BUILDKIT_CLI, "build", "--no-cache", "--progress=plain", f"--iidfile={iidfile}", *labels]
            argv += ["-f", "Dockerfile", "-"] if from_tar else [str(cli_dir)]
            started = time.perf_counter()
            process = subprocess.Popen(argv, stdin=subprocess.PIPE if from_tar else subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       env={**os.environ, "DOCKER_BUILDKIT": "1"})
            if from_tar:
                process.stdin.write(context_tar)  # a few KiB: fits the pipe
                process.stdin.close()
            first = None
            step_vertices: set[bytes] = set()
            last_done = started
            output = []
            for line in process.stdout:
                now = time.perf_counter()
                output.append(line)
                step = STEP_LINE.match(line)
                if step is not None:
                    step_vertices.add(step.group(1))
                    first = first or now
                done = DONE_LINE.match(line)
                if done is not None and done.group(1) in step_vertices:
                    last_done = now
            process.wait()
            ended = time.perf_counter()
            assert process.returncode == 0, b"".join(output[-20:]).decode(errors="replace")
            images.append(iidfile.read_text().strip())
            return ended - started, {"to_first_step": first - started, "steps": last_done - first,
                                     "export_exit": ended - last_done, "total": ended - started}

        def cli_classic(labels: list[str]) -> float:
            started = time.perf_counter()
            result = subprocess.run(["docker", "build", "-q", "--no-cache", *labels, str(cli_dir)],
                                    capture_output=True, text=True, env={**os.environ, "DOCKER_BUILDKIT": "0"},
                                    check=True)
            elapsed = time.perf_counter() - started
            images.append(result.stdout.strip().splitlines()[-1])
            return elapsed

        # Warm-up, both builders: the worker's first task imports everything, and the engine's first BuildKit
        # build loads its state.
        _, warm = console_build(source.pk)
        console_build(source.pk, "classic")
        # The console labels every image (created, revision, source for git, build id); the CLI builds pass the
        # same labels.
        same_labels = [f"--label={key}={value}" for key, value in Image.objects.get(build=warm).labels.items()
                       if key.startswith(("org.opencontainers.", "io.console."))]
        cli_buildkit(same_labels, True)
        bk_tar, bk_dir, bk_console, bk_tar_phases, console_rows = [], [], [], [], []
        plain_times, cli_times, classic_times = [], [], []
        for round_ in range(PAIRS):
            # The console goes first in every other round, so that a slow spell of the engine (a shared machine)
            # does not always fall on the same side.
            if round_ % 2:
                elapsed, build = console_build(source.pk)
            elapsed_tar, phases = cli_buildkit(same_labels, True)
            bk_tar.append(elapsed_tar)
            bk_tar_phases.append(phases)
            bk_dir.append(cli_buildkit(same_labels, False)[0])
            if not round_ % 2:
                elapsed, build = console_build(source.pk)
            assert build.builder == "buildkit", build.builder_reason
            bk_console.append(elapsed)
            console_rows.append(console_phases(build))
            plain_times.append(cli_classic([]))
            cli_times.append(cli_classic(same_labels))
            elapsed, build = console_build(source.pk, "classic")
            assert build.builder == "classic", build.builder
            classic_times.append(elapsed)
        # Where a classic console build's time goes, for one more build: before the engine starts, and after.
        _, last = console_build(source.pk, "classic")
        steps = list(last.steps.order_by("number"))
        classic_breakdown = (
            f"queued->claimed {(last.started_at - last.queued_at).total_seconds():.3f} s, "
            f"claimed->step 1 {(steps[0].started_at - last.started_at).total_seconds():.3f} s, "
            f"engine steps {(steps[-1].finished_at - steps[0].started_at).total_seconds():.3f} s, "
            f"last step->finished {(last.finished_at - steps[-1].finished_at).total_seconds():.3f} s")

        # Log latency: poll the log endpoint and compare each tick's own timestamp with when it arrived.
        response = client.post("/api/v1/builds/", {"source": ticker.pk, "no_cache": True}, format="json")
        build_id, offset, delays = response.json()["id"], 0, []
        while True:
            chunk = client.get(f"/api/v1/builds/{build_id}/log/?offset={offset}").json()
            now = uptime()
            for line in chunk["lines"]:
                tick = TICK_LINE.fullmatch(line)
                if tick is not None:
                    delays.append(now - float(tick.group(1)))
            offset = chunk["next_offset"]
            if chunk["finished"]:
                break
            time.sleep(0.05)
        ticked = Build.objects.get(pk=build_id)
        if ticked.image_id:
            images.append(ticked.image_id)
        delays.sort()
        p95 = delays[int(0.95 * (len(delays) - 1))]

        tar_median, console_median = statistics.median(bk_tar), statistics.median(bk_console)
        print(f"BuildKit, no cache, the console's {len(same_labels)} labels, {PAIRS} rounds:")
        print(f"  docker build, tar on stdin      : {series(bk_tar)}")
        print(f"  docker build, directory         : {series(bk_dir)}")
        print(f"  console build (API to succeeded): {series(bk_console)}")
        print(f"  ratio console / CLI (tar)       : {console_median / tar_median:6.2f}  (target <= 1.05)")
        print(f"  ratio console / CLI (directory) : {console_median / statistics.median(bk_dir):6.2f}")
        paired = statistics.median(console / cli for console, cli in zip(bk_console, bk_tar, strict=True))
        print(f"  median of the rounds' ratios    : {paired:6.2f}  (console / CLI (tar), round by round)")
        print("  console phases (medians)        : " + ", ".join(
            f"{name} {median_of(console_rows, name):.3f} s" for name in
            ("api", "pickup", "to_first_step", "steps", "export_record", "after_record", "total")))
        print("  CLI (tar) phases (medians)      : " + ", ".join(
            f"{name} {median_of(bk_tar_phases, name):.3f} s" for name in
            ("to_first_step", "steps", "export_exit", "total")))
        print("classic builder, no cache:")
        print(f"  docker build (DOCKER_BUILDKIT=0): {series(plain_times)}")
        print(f"  the same with the labels        : {series(cli_times)}")
        print(f"  console build, builder=classic  : {series(classic_times)}")
        classic_median = statistics.median(classic_times)
        print(f"  ratio console / docker + labels : {classic_median / statistics.median(cli_times):6.2f}"
              "  (target <= 1.10)")
        print(f"  ratio console / plain docker    : {classic_median / statistics.median(plain_times):6.2f}")
        print(f"  console build breakdown         : {classic_breakdown}")
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
