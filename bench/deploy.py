"""Benchmark: deploy the same image to 1 host and to 3 hosts in one run; hosts are served in parallel.

Starts four real engines in network namespaces (tests/fixtures/fleet.py: one for the single deploy, three fresh
ones for the triple, so both copy the image from the build engine), builds examples/hello on the build engine,
then runs the console's own deployment code (create_deployment + run_deployment) against a throwaway SQLite
database. Prints both times and the ratio time(3)/time(1); the target is at most 1.5. Run as root:

    .venv/bin/python bench/deploy.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DB = Path(tempfile.mkdtemp(prefix="console-bench-")) / "bench.sqlite3"
os.environ["DATABASE_URL"] = f"sqlite:///{DB}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

from console.engine import Engine  # noqa: E402
from fleet import services  # noqa: E402
from fleet.models import Deployment, Host  # noqa: E402
from tests.fixtures.fleet import start_fleet  # noqa: E402

IMAGE = "console-bench/hello:1"
TARGET_RATIO = 1.5


def build_image() -> None:
    with Engine.for_builds() as engine, engine.errors("Building the benchmark image"):
        for event in engine.api.build(path=str(ROOT / "examples" / "hello"), tag=IMAGE, rm=True, decode=True):
            if "error" in event:
                raise SystemExit(f"build failed: {event['error']}")


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
    call_command("migrate", verbosity=0)
    owner = get_user_model().objects.create_user("bench", "bench@example.com", "bench-password-1")
    build_image()
    fleet = start_fleet([{"label": f"h{n}"} for n in range(1, 5)])
    try:
        hosts = [Host.objects.create(owner=owner, name=h.label, url=h.url) for h in fleet]
        one = deploy(owner, hosts[:1], "bench-one")
        three = deploy(owner, hosts[1:], "bench-three")
    finally:
        fleet.teardown()
        with Engine.for_builds() as engine, engine.errors("Cleaning up"):
            engine.api.remove_image(IMAGE, force=True)
        DB.unlink(missing_ok=True)
        DB.parent.rmdir()
    ratio = three / one
    print(f"deploy to 1 host:  {one:.2f} s")
    print(f"deploy to 3 hosts: {three:.2f} s")
    print(f"ratio time(3)/time(1): {ratio:.2f} (target <= {TARGET_RATIO})")
    sys.exit(0 if ratio <= TARGET_RATIO else 1)


if __name__ == "__main__":
    main()
