"""The embedded default of `make run` (SQLite in the data folder, Celery's filesystem broker) runs a deployment to
three hosts and two builds at once with no database error: the deployment's three host threads, the two builds'
log flushes and heartbeats, and a reader polling every log all write or read the one SQLite file together.

Real components: a Celery worker started as `make run` starts it (scripts/run.sh: one worker, queues celery and
builds, on the data folder's SQLite file and filesystem broker; concurrency 3 here so that the three jobs run at
the same time rather than one after the other), three engines in network namespaces (tests/fixtures/fleet.py)
and the build engine. This test does not use the test run's database (which may be PostgreSQL): the rows are made
by a client process (DRIVER) on the SQLite file, as the web server would make them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console.engine import Engine
from tests.fixtures.fleet import start_fleet

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "console-test/sqlite-hello:1"
BUSYBOX = "busybox:1.35.0"
LOCKED = "database is locked"
TIMEOUT = 120

# The client: makes the owner, hosts, sources; starts the deployment and the two builds (each enqueued on the
# filesystem broker); reads every job's log while they run, as browsers polling the log pages do; prints the end.
DRIVER = """
import io, json, sys, tarfile, time
import django
django.setup()
from django.contrib.auth import get_user_model
from builds import access
from builds.models import Build, Image
from builds.services import repositories
from builds.services.builds import BuildOptions, trigger_build
from console import jobs
from console.constants import FINAL_STATUSES
from fleet import services
from fleet.models import Deployment, Host

spec = json.loads(sys.argv[1])
owner = get_user_model().objects.create_user("sqlite", "sqlite@example.com", "a password of some length")
access.share_image(spec["busybox"], spec["busybox_id"])
Image.objects.create(owner=owner, image_id=spec["image_id"], tags=[spec["image"]])
hosts = [Host.objects.create(owner=owner, name=f"h{n}", url=url) for n, url in enumerate(spec["hosts"], start=1)]

def source(name):
    # A few RUN steps that print, so that each build flushes log lines while the deployment writes its own.
    dockerfile = (f"FROM {spec['busybox']}\\n"
                  + "".join(f"RUN for i in 1 2 3 4 5 6 7 8; do echo {name} step {n} line $i; done\\n"
                            for n in range(6)))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile.encode())
        tar.addfile(info, io.BytesIO(dockerfile.encode()))
    repository = repositories.create_repository(owner, name)
    return repositories.add_archive_source(repository, io.BytesIO(buffer.getvalue()), f"{name}.tar.gz")

sources = [source(f"sqlite-build-{n}") for n in (1, 2)]
deployment = services.create_deployment(owner, {
    "name": "sqlite-app", "image": spec["image"], "hosts": [host.pk for host in hosts], "ports": {"8080/tcp": 8080},
    "env": {"WHO": "sqlite"},
})
builds = [trigger_build(owner, s, BuildOptions(tags=[f"{s.repository.name}:1"], no_cache=True)) for s in sources]
everything = [deployment, *builds]
offsets = {id(job): 0 for job in everything}
deadline = time.monotonic() + spec["timeout"]
while time.monotonic() < deadline:
    for job in everything:
        offsets[id(job)] = jobs.read_log(job, offsets[id(job)]).next_offset
    if all(type(job).objects.get(pk=job.pk).status in FINAL_STATUSES for job in everything):
        break
    time.sleep(0.2)
deployment = Deployment.objects.get(pk=deployment.pk)
builds = [Build.objects.get(pk=build.pk) for build in builds]
print(json.dumps({
    "deployment": {"status": deployment.status, "error": deployment.error, "log": jobs.log_text(deployment),
                   "targets": sorted(t.status for t in deployment.targets.all()),
                   "span": [deployment.started_at.timestamp(), deployment.finished_at.timestamp()]},
    "builds": [{"status": b.status, "error": b.error, "log": jobs.log_text(b), "image_id": b.image_id,
                "span": [b.started_at.timestamp(), b.finished_at.timestamp()]} for b in builds],
    "images": [image.image_id for image in Image.objects.filter(owner=owner).exclude(image_id=spec["image_id"])],
}))
"""


def console_environment(data_dir: Path) -> dict[str, str]:
    """`make run`'s environment: no DATABASE_URL (SQLite in the data folder), no broker URL (filesystem)."""
    # Not as a pytest-xdist worker either: tests/settings.py would put the data in a subfolder per worker.
    environment = {k: v for k, v in os.environ.items()
                   if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "PYTEST_XDIST_WORKER"}}
    # tests.settings: the console's own settings plus the test fleets' addresses allowed as hosts.
    environment.update({"CONSOLE_TEST_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "tests.settings",
                        "CELERY_TASK_ALWAYS_EAGER": "false"})
    return environment


@pytest.fixture
def embedded(tmp_path):
    """A migrated SQLite data folder and a worker on it, as `make run` runs them; the worker stopped by pid."""
    data_dir = tmp_path / "data"
    environment = console_environment(data_dir)
    subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity=0"], cwd=ROOT, env=environment,
                   check=True, timeout=300)
    output_path = tmp_path / "worker.log"
    with output_path.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "console", "worker", "--loglevel=INFO", "--concurrency=3",
             "-Q", "celery,builds", "--without-gossip", "--without-mingle", "-n", f"sqlite-{os.getpid()}@%h"],
            cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while " ready." not in output_path.read_text(errors="replace"):
            assert worker.poll() is None, output_path.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.2)
        yield data_dir, environment, output_path
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=30)


@pytest.fixture
def hello_image():
    with Engine.for_builds() as engine:
        with engine.errors("Building the test image"):
            for event in engine.api.build(path=str(ROOT / "examples" / "hello"), tag=IMAGE, rm=True, decode=True):
                assert "error" not in event, event
        image_id = engine.api.inspect_image(IMAGE)["Id"]
        busybox_id = engine.api.inspect_image(BUSYBOX)["Id"]
    yield image_id, busybox_id
    with Engine.for_builds() as engine, engine.errors("Cleaning up"):
        engine.api.remove_image(IMAGE, force=True)


@pytest.fixture
def three_hosts():
    fleet = start_fleet([{"label": "one"}, {"label": "two"}, {"label": "three"}])
    try:
        yield fleet
    finally:
        fleet.teardown()


def test_a_three_host_deployment_and_two_builds_at_once_on_sqlite(embedded, hello_image, three_hosts):
    data_dir, environment, worker_log = embedded
    image_id, busybox_id = hello_image
    spec = {"image": IMAGE, "image_id": image_id, "busybox": BUSYBOX, "busybox_id": busybox_id,
            "hosts": [host.url for host in three_hosts], "timeout": TIMEOUT}
    started = time.monotonic()
    driver = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(spec)], cwd=ROOT, env=environment,
                            capture_output=True, text=True, timeout=TIMEOUT + 60)
    elapsed = time.monotonic() - started
    try:
        assert driver.returncode == 0, driver.stderr[-3000:]
        result = json.loads(driver.stdout.strip().splitlines()[-1])
        deployment, builds = result["deployment"], result["builds"]

        assert (deployment["status"], deployment["error"]) == ("succeeded", ""), deployment["log"]
        assert deployment["targets"] == ["succeeded"] * 3
        assert deployment["log"].endswith("Deployed to all 3 host(s)")
        for host in ("h1", "h2", "h3"):
            assert f"[{host}] running as container" in deployment["log"]
        for build in builds:
            assert (build["status"], build["error"]) == ("succeeded", ""), build["log"]
            assert "step 5 line 8" in build["log"]
        for host in three_hosts:
            with host.engine() as engine:
                assert [c["State"] for c in engine.api.containers(all=True)] == ["running"]

        logs = [deployment["log"], *(build["log"] for build in builds), worker_log.read_text(errors="replace"),
                driver.stderr]
        assert not [log for log in logs if LOCKED in log]
        # The three jobs ran at the same time (one worker process each), all on the one SQLite file.
        spans = [deployment["span"], *(build["span"] for build in builds)]
        assert max(start for start, _ in spans) < min(end for _, end in spans), spans
        assert (data_dir / "console.sqlite3").exists()
        assert elapsed < TIMEOUT
    finally:
        if driver.returncode == 0 and driver.stdout.strip():
            with Engine.for_builds() as engine, engine.errors("Cleaning up"):
                for built in json.loads(driver.stdout.strip().splitlines()[-1])["images"]:
                    engine.api.remove_image(built, force=True)
