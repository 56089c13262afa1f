"""Benchmark: the same twelve builds on a farm of one build node and of two, in one run.

Starts three real engines in network namespaces (tests/fixtures/fleet.py: one for the single node, two fresh ones
for the pair, so both runs start with a cold cache), copies the busybox base image to each, and binds a real Celery
worker (concurrency 2) to each engine as a build node (BUILD_NODE_NAME, DOCKER_HOST). Four repositories, three
builds each, queued at once through the console's own trigger_build: each build has a slow "dependencies" step
that the cache can serve (same in every build of a repository) and a slow "compile" step after its own file.

Prints builds per minute for one node and for two, the ratio (target >= 1.6 on a 2-core machine: builds wait on
their steps, not on the scheduler), and the share of builds whose dependencies step came from the cache because
the scheduler sent them to the node that built their repository last. Run as root:

    .venv/bin/python bench/farm.py
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REPOSITORIES = ["alpha", "beta", "gamma", "delta"]
ROUNDS = 3
TARGET_RATIO = 1.6
BASE = "busybox:1.35.0"
# The dependencies step names its repository: repositories share no layer but the base.
DOCKERFILE = """FROM {base}
RUN sleep 4 && echo {repository} dependencies > /deps
COPY app.txt /app.txt
RUN sleep 3 && cat /app.txt > /built
"""


def tar_of(files: dict[str, bytes]) -> bytes:
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def start_node(env: dict[str, str], name: str, url: str, log: Path) -> subprocess.Popen:
    node_env = {**env, "BUILD_NODE_NAME": name, "DOCKER_HOST": url, "BUILD_NODE_HEARTBEAT_INTERVAL": "2"}
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "console", "worker", "-Q", f"builds.{name}", "-c", "2",
             "--without-gossip", "--without-mingle", "--loglevel=WARNING", "-n", f"{name}@bench"],
            cwd=ROOT, env=node_env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def run_farm(label: str, node_names: list[str]) -> dict:
    from django.contrib.auth import get_user_model

    from builds.models import Build, BuildNode
    from builds.services import builds as buildservice
    from builds.services import repositories
    from builds.services.builds import BuildOptions, trigger_build

    deadline = time.monotonic() + 60
    while BuildNode.objects.filter(name__in=node_names).count() < len(node_names) or not all(
            buildservice.is_available(node) for node in BuildNode.objects.filter(name__in=node_names)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the nodes {node_names} did not register")
        time.sleep(0.2)
    user = get_user_model().objects.create_user(f"bench-{label}", f"{label}@example.com", "bench-password-1")
    sources = {}
    for name in REPOSITORIES:
        repository = repositories.create_repository(user, name)
        dockerfile = DOCKERFILE.format(base=BASE, repository=name).encode()
        sources[name] = [
            repositories.add_archive_source(repository, io.BytesIO(tar_of(
                {"Dockerfile": dockerfile, "app.txt": f"{name} {round_}\n".encode()})), "b.tar")
            for round_ in range(ROUNDS)
        ]
    started = time.perf_counter()
    builds = [trigger_build(user, sources[name][round_], BuildOptions())
              for round_ in range(ROUNDS) for name in REPOSITORIES]
    ids = [build.pk for build in builds]
    while Build.objects.filter(pk__in=ids, status__in=["queued", "running"]).exists():
        time.sleep(0.1)
    elapsed = time.perf_counter() - started
    done = list(Build.objects.filter(pk__in=ids).select_related("node", "repository").order_by("pk"))
    failed = [build for build in done if build.status != "succeeded"]
    if failed:
        raise RuntimeError(f"{len(failed)} builds failed: {failed[0].error}")
    # The dependencies step is step 2; a repository's first build cannot find it in any cache.
    hits = sum(1 for build in done if build.steps.filter(number=2, cached=True).exists())
    repeats = len(done) - len(REPOSITORIES)
    per_node = {name: sum(1 for build in done if build.node.name == name) for name in node_names}
    return {"elapsed": elapsed, "per_minute": len(done) / elapsed * 60, "hits": hits, "repeats": repeats,
            "per_node": per_node, "image_ids": [build.image_id for build in done]}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-farm-"))
    database = f"console_bench_farm_{uuid.uuid4().hex[:8]}"
    suffix = uuid.uuid4().hex[:6]
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {database}"], check=True)
    env = {**os.environ, "CONSOLE_DATA_DIR": str(work / "data"), "DJANGO_SETTINGS_MODULE": "console.settings",
           "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
           "CELERY_BROKER_URL": "redis://127.0.0.1:6379/13", "CELERY_DEFAULT_QUEUE": f"bench-{database}",
           "BUILDS_QUEUE": f"bench-builds-{database}", "LOG_LEVEL": "WARNING", "BUILDS_PER_USER": "100"}
    os.environ.update(env)
    workers: list[subprocess.Popen] = []
    fleet = None
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        from builds.models import BuildNode
        from console.engine import Engine
        from console.engine.transfer import copy_image
        from tests.fixtures.fleet import start_fleet

        fleet = start_fleet([{"label": "one"}, {"label": "pair-a"}, {"label": "pair-b"}])
        with Engine.for_builds() as main_engine:
            for host in fleet.hosts:
                with host.engine(timeout=120) as engine:
                    copy_image(main_engine, engine, BASE)
        single, pair = fleet.hosts[0], fleet.hosts[1:]

        name = f"one{suffix}"
        workers.append(start_node(env, name, single.url, work / "one.log"))
        one = run_farm("one", [name])
        stop(workers.pop())
        BuildNode.objects.filter(name=name).delete()

        names = [f"pair{suffix}{index}" for index in range(len(pair))]
        for node_name, host in zip(names, pair, strict=True):
            workers.append(start_node(env, node_name, host.url, work / f"{node_name}.log"))
        two = run_farm("two", names)

        ratio = two["per_minute"] / one["per_minute"]
        print(f"{len(REPOSITORIES) * ROUNDS} builds ({len(REPOSITORIES)} repositories x {ROUNDS}), "
              f"node concurrency 2, on {os.cpu_count()} cores")
        print(f"one node : {one['elapsed']:6.1f} s  {one['per_minute']:5.1f} builds/min  "
              f"cache hits {one['hits']}/{one['repeats']} repeated builds")
        print(f"two nodes: {two['elapsed']:6.1f} s  {two['per_minute']:5.1f} builds/min  "
              f"cache hits {two['hits']}/{two['repeats']} repeated builds  per node {two['per_node']}")
        print(f"ratio two/one: {ratio:.2f}  (target >= {TARGET_RATIO})")
        print(f"share of builds whose dependencies came from the cache thanks to affinity (two nodes): "
              f"{two['hits'] / (len(REPOSITORIES) * ROUNDS):.0%} of all, {two['hits'] / two['repeats']:.0%} of "
              f"the repeated ones")
    finally:
        for worker in workers:
            stop(worker)
        if fleet is not None:
            fleet.teardown()
        from django.db import connections

        connections.close_all()
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc",
                        f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"])
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
