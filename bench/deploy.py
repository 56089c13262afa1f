"""Benchmark: deploy the same image to 1 host and to 3 hosts, ROUNDS times in a row; hosts are served in parallel.

Starts four real engines in network namespaces (tests/fixtures/fleet.py: one for the single deploy, three for the
triple), builds examples/hello on the build engine, then runs the console's own deployment code
(create_deployment + run_deployment: the three host threads write to the database at once) against a throwaway
SQLite database opened as the embedded default of `make run` opens it (WAL, busy timeout, IMMEDIATE transactions:
console/settings.py). Before each round the hosts lose the image and the containers, so that every deploy copies
the image from the build engine. Prints both times and the ratio time(3)/time(1) of each round, then the medians;
any failed deployment (a "database is locked" among them) stops it with an error. The target is a median ratio of
at most 1.5. Run as root:

    .venv/bin/python bench/deploy.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DB = Path(tempfile.mkdtemp(prefix="console-bench-")) / "bench.sqlite3"
os.environ["DATABASE_URL"] = f"sqlite:///{DB}"
# Its secrets, static and scratch folders beside that database: not in var/, the data folder of `make run`.
os.environ["CONSOLE_DATA_DIR"] = str(DB.parent)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402

from builds.models import Image  # noqa: E402
from console.engine import Engine  # noqa: E402
from fleet import services  # noqa: E402
from fleet.models import Deployment, Host  # noqa: E402
from tests.fixtures.fleet import FleetHost, start_fleet  # noqa: E402

IMAGE = "console-bench/hello:1"
TARGET_RATIO = 1.5


def build_image() -> str:
    with Engine.for_builds() as engine, engine.errors("Building the benchmark image"):
        for event in engine.api.build(path=str(ROOT / "examples" / "hello"), tag=IMAGE, rm=True, decode=True):
            if "error" in event:
                raise SystemExit(f"build failed: {event['error']}")
        return engine.api.inspect_image(IMAGE)["Id"]


def forget_image(fleet_host: FleetHost, image_id: str) -> None:
    """The host as new: no containers, no copy of the image, so that the next deploy copies it again."""
    fleet_host.remove_all_containers()
    with fleet_host.engine() as engine, engine.errors("Removing the benchmark image"):
        if engine.image_exists(image_id):
            engine.api.remove_image(image_id, force=True)


def deploy(owner, hosts: list[Host], name: str) -> float:
    services._enqueue_deployment = lambda deployment: None  # run here, not on a worker
    started = time.perf_counter()
    deployment = services.create_deployment(owner, {
        "name": name, "image": IMAGE, "hosts": [host.pk for host in hosts], "ports": {"8080/tcp": 8080},
        "env": {"WHO": "the benchmark"},
    })
    services.run_deployment(deployment.pk)
    elapsed = time.perf_counter() - started
    deployment = Deployment.objects.get(pk=deployment.pk)
    if deployment.status != "succeeded":
        raise SystemExit(f"deployment {name} failed: {deployment.error}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="deploys to 1 and to 3 hosts, in a row (10)")
    rounds = parser.parse_args().rounds
    if rounds < 1:
        parser.error("--rounds is at least 1")
    call_command("migrate", verbosity=0)
    with connections["default"].cursor() as cursor:
        journal = cursor.execute("PRAGMA journal_mode").fetchone()[0]
    print(f"database: SQLite {DB.name}, journal {journal}, "
          f"transactions {connections['default'].transaction_mode or 'DEFERRED'}")
    owner = get_user_model().objects.create_user("bench", "bench@example.com", "bench-password-1")
    image_id = build_image()
    # The owner's image (builds/access.py lets a user deploy only images their records hold).
    Image.objects.get_or_create(owner=owner, image_id=image_id, defaults={"tags": [IMAGE]})
    fleet = start_fleet([{"label": f"h{n}"} for n in range(1, 5)])
    times: list[tuple[float, float]] = []
    try:
        hosts = [Host.objects.create(owner=owner, name=h.label, url=h.url) for h in fleet]
        for number in range(1, rounds + 1):
            for fleet_host in fleet:
                forget_image(fleet_host, image_id)
            one = deploy(owner, hosts[:1], f"bench-one-{number}")
            three = deploy(owner, hosts[1:], f"bench-three-{number}")
            times.append((one, three))
            print(f"round {number:2}/{rounds}: 1 host {one:6.2f} s, 3 hosts {three:6.2f} s, "
                  f"ratio {three / one:.2f}", flush=True)
    finally:
        fleet.teardown()
        with Engine.for_builds() as engine, engine.errors("Cleaning up"):
            engine.api.remove_image(IMAGE, force=True)
        # The database with its -wal and -shm files, which stay while a connection is open.
        connections.close_all()
        shutil.rmtree(DB.parent, ignore_errors=True)
    one = statistics.median(t[0] for t in times)
    three = statistics.median(t[1] for t in times)
    ratio = statistics.median(t[1] / t[0] for t in times)
    print(f"{rounds} round(s), no error")
    print(f"deploy to 1 host:  median {one:.2f} s (min {min(t[0] for t in times):.2f}, "
          f"max {max(t[0] for t in times):.2f})")
    print(f"deploy to 3 hosts: median {three:.2f} s (min {min(t[1] for t in times):.2f}, "
          f"max {max(t[1] for t in times):.2f})")
    print(f"ratio time(3)/time(1): median {ratio:.2f} (target <= {TARGET_RATIO})")
    sys.exit(0 if ratio <= TARGET_RATIO else 1)


if __name__ == "__main__":
    main()
