"""Benchmark: the same twelve builds on a farm of one build node and of two, in one run, and the cache the
nodes share through the console's registry.

Starts three real engines in network namespaces (tests/fixtures/fleet.py: one for the single node, two fresh ones
for the pair, so both runs start with a cold cache), copies the busybox base image to each, and binds a real Celery
worker (concurrency 2) to each engine as a build node (BUILD_NODE_NAME, DOCKER_HOST). The console's registry is a
real Distribution with token auth on the first engine's gateway, its token endpoint a real gunicorn of the console;
every engine is told the registry is plain HTTP (FleetHost.trust_registry). Four repositories, three builds each,
queued at once through the console's own trigger_build: each build has a slow "dependencies" step that the cache
can serve (same in every build of a repository) and a slow "compile" step after its own file.

Prints builds per minute for one node and for two, the ratio (target >= 1.6 on a 2-core machine: builds wait on
their steps, not on the scheduler), the cache hits of the repeated builds on each node, and then the shared
cache at work: each repository built once more on the node of the pair that did not build it last (the other
drained), whose dependencies step must come from the cache that node imports from the registry (target: every
one). Run as root:

    .venv/bin/python bench/farm.py
"""

from __future__ import annotations

import io
import os
import signal
import socket
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tar_of(files: dict[str, bytes]) -> bytes:
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def start_web(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    """The console under gunicorn, for its registry token endpoint (the realm the build CLIs ask)."""
    web_env = {**env, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1",
               "ALLOWED_HOSTS": "127.0.0.1,localhost"}
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    with log.open("wb") as output:
        process = subprocess.Popen([gunicorn, "-c", "deploy/gunicorn.conf.py", "console.wsgi"], cwd=ROOT,
                                   env=web_env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the console did not start under gunicorn: {log.read_text(errors='replace')[-2000:]}")


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


def wait_for_nodes(node_names: list[str]) -> None:
    from builds.models import BuildNode
    from builds.services import builds as buildservice

    deadline = time.monotonic() + 60
    while BuildNode.objects.filter(name__in=node_names).count() < len(node_names) or not all(
            buildservice.is_available(node) for node in BuildNode.objects.filter(name__in=node_names)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the nodes {node_names} did not register")
        time.sleep(0.2)


def wait_for_builds(ids: list[int]) -> list:
    from builds.models import Build

    while Build.objects.filter(pk__in=ids, status__in=["queued", "running"]).exists():
        time.sleep(0.1)
    done = list(Build.objects.filter(pk__in=ids).select_related("node", "repository").order_by("pk"))
    failed = [build for build in done if build.status != "succeeded"]
    if failed:
        raise RuntimeError(f"{len(failed)} builds failed: {failed[0].error}")
    return done


def dependencies_cached(build) -> bool:
    # The dependencies step is step 2; a repository's first build cannot find it in any cache.
    return build.steps.filter(number=2, cached=True).exists()


def run_farm(label: str, node_names: list[str]) -> dict:
    from django.contrib.auth import get_user_model

    from builds.services import repositories
    from builds.services.builds import BuildOptions, trigger_build

    wait_for_nodes(node_names)
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
    done = wait_for_builds([build.pk for build in builds])
    elapsed = time.perf_counter() - started
    hits = sum(1 for build in done if dependencies_cached(build))
    repeats = len(done) - len(REPOSITORIES)
    per_node = {name: sum(1 for build in done if build.node.name == name) for name in node_names}
    hits_per_node = {name: sum(1 for build in done if build.node.name == name and dependencies_cached(build))
                     for name in node_names}
    return {"elapsed": elapsed, "per_minute": len(done) / elapsed * 60, "hits": hits, "repeats": repeats,
            "per_node": per_node, "hits_per_node": hits_per_node, "user": user, "sources": sources,
            # Builds in the order they were queued: the last one of a repository names its last node.
            "last_node": {build.repository.name: build.node.name for build in done}}


def run_on_the_other_node(farm: dict, node_names: list[str]) -> list[tuple[str, str, bool]]:
    """Each repository built once more on the node that did not build it last: (repository, node, cache hit)."""
    from builds.models import BuildNode
    from builds.services import nodes
    from builds.services.builds import BuildOptions, trigger_build

    rows = []
    for name in REPOSITORIES:
        other = next(node for node in node_names if node != farm["last_node"][name])
        for node in BuildNode.objects.filter(name__in=node_names):
            nodes.set_drained(node, node.name != other)
        # A file the builds have not seen: only the dependencies step before it can come from a cache.
        source = farm["sources"][name][0]
        build = trigger_build(farm["user"], source, BuildOptions())
        (done,) = wait_for_builds([build.pk])
        rows.append((name, done.node.name, dependencies_cached(done)))
    return rows


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-farm-"))
    database = f"console_bench_farm_{uuid.uuid4().hex[:8]}"
    suffix = uuid.uuid4().hex[:6]
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {database}"], check=True)
    web_port = free_port()
    env = {**os.environ, "CONSOLE_DATA_DIR": str(work / "data"), "DJANGO_SETTINGS_MODULE": "console.settings",
           "REGISTRY_DIR": str(work / "registry-token"), "REGISTRY_SERVICE": "bench-registry",
           "REGISTRY_ISSUER": "bench-console", "REGISTRY_TOKEN_REALM": f"http://127.0.0.1:{web_port}/registry/token/",
           "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
           "CELERY_BROKER_URL": "redis://127.0.0.1:6379/13", "CELERY_DEFAULT_QUEUE": f"bench-{database}",
           "BUILDS_QUEUE": f"bench-builds-{database}", "LOG_LEVEL": "WARNING", "BUILDS_PER_USER": "100"}
    os.environ.update(env)
    workers: list[subprocess.Popen] = []
    fleet = registry = web = None
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        from builds.models import BuildNode
        from console.engine import Engine
        from console.engine.transfer import copy_image
        from registry.tokens import CERT_FILE, ensure_signing_material
        from tests.fixtures.fleet import start_fleet
        from tests.fixtures.registry import start_distribution

        fleet = start_fleet([{"label": "one"}, {"label": "pair-a"}, {"label": "pair-b"}])
        token_dir = Path(env["REGISTRY_DIR"])
        ensure_signing_material(token_dir)
        (work / "registry").mkdir()
        registry = start_distribution(work / "registry", {"token": {
            "realm": env["REGISTRY_TOKEN_REALM"], "service": env["REGISTRY_SERVICE"],
            "issuer": env["REGISTRY_ISSUER"], "rootcertbundle": str(token_dir / CERT_FILE)}}, listen="0.0.0.0")
        address = f"{fleet.hosts[0].gateway}:{registry.address.rsplit(':', 1)[1]}"
        env["REGISTRY_ADDRESS"] = os.environ["REGISTRY_ADDRESS"] = address
        web = start_web(env, web_port, work / "web.log")
        with Engine.for_builds() as main_engine:
            for host in fleet.hosts:
                host.trust_registry(address)
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
        crossed = run_on_the_other_node(two, names)

        ratio = two["per_minute"] / one["per_minute"]
        print(f"{len(REPOSITORIES) * ROUNDS} builds ({len(REPOSITORIES)} repositories x {ROUNDS}), "
              f"node concurrency 2, on {os.cpu_count()} cores")
        print(f"one node : {one['elapsed']:6.1f} s  {one['per_minute']:5.1f} builds/min  "
              f"cache hits {one['hits']}/{one['repeats']} repeated builds")
        print(f"two nodes: {two['elapsed']:6.1f} s  {two['per_minute']:5.1f} builds/min  "
              f"cache hits {two['hits']}/{two['repeats']} repeated builds  builds per node {two['per_node']}  "
              f"hits per node {two['hits_per_node']}")
        print(f"ratio two/one: {ratio:.2f}  (target >= {TARGET_RATIO})")
        print(f"share of builds whose dependencies came from a cache (two nodes): "
              f"{two['hits'] / (len(REPOSITORIES) * ROUNDS):.0%} of all, {two['hits'] / two['repeats']:.0%} of "
              f"the repeated ones")
        hits = sum(1 for _, _, hit in crossed if hit)
        print(f"shared cache: each repository once more on the other node of the pair: dependencies from the "
              f"cache {hits}/{len(crossed)}  (target {len(crossed)}/{len(crossed)})")
        for name, node, hit in crossed:
            print(f"  {name:6} on {node}: {'cache hit' if hit else 'MISS'}")
    finally:
        for worker in workers:
            stop(worker)
        for process in (web,):
            if process is not None:
                stop(process)
        if registry is not None:
            registry.stop()
        if fleet is not None:
            fleet.teardown()
        from django.db import connections

        connections.close_all()
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc",
                        f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"])
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
