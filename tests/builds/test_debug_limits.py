"""What a failed build's debug box may cost, against the real engine: capped output, one command per user at a
time, a CPU limit; and the memory limit a build gets when it sets none."""

from __future__ import annotations

import resource
import subprocess
import threading
import time

import pytest
from django.core.cache import cache
from django.urls import reverse

from builds import access
from builds.models import Build
from builds.services import builds as buildservice
from console.engine.build import OUTPUT_LIMIT, OUTPUT_READ_LIMIT
from tests.builds.build_helpers import remove_images, source_from, wait_for_build
from tests.fixtures.worker import routed_to, running_worker, wait_for

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]
URL = "/api/v1/builds/"
BUSYBOX = "busybox:1.35.0"
# Either cgroup version: v2 files first, then v1's.
CGROUP_MEMORY = "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
CGROUP_CPU = ("cat /sys/fs/cgroup/cpu.max 2>/dev/null || "
              "echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)")


@pytest.fixture
def busybox_id() -> str:
    return subprocess.run(["/usr/bin/docker", "image", "inspect", "-f", "{{.Id}}", BUSYBOX],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def failed_build(owner, repository, busybox_id) -> Build:
    source = source_from(repository, {"Dockerfile": f"FROM {BUSYBOX}\nRUN false\n"})
    return Build.objects.create(owner=owner, repository=repository, source=source, status="failed",
                                failed_step=2, last_good_layer=busybox_id)


@pytest.fixture(autouse=True)
def free_slots():
    cache.clear()
    yield
    cache.clear()


def debug(owner_api, build: Build, command: str):
    return owner_api.post(f"{URL}{build.pk}/debug/", {"command": command}, format="json")


def debug_containers() -> list[str]:
    listing = subprocess.run(["/usr/bin/docker", "ps", "-aq", "--filter", "label=io.console.purpose=debug"],
                             capture_output=True, text=True, check=True).stdout
    return listing.split()


def test_a_command_printing_50_mb_gets_a_capped_output_quickly(owner_api, failed_build, busybox_id):
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    # 50 MB of text, far more than is kept or read.
    response = debug(owner_api, failed_build, "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 50000000; echo END")
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["output"].startswith("[output truncated: the command printed more than")
    assert len(body["output"].encode()) < OUTPUT_LIMIT + 500
    assert "0123456789abcdefghijklmnopqrstuvwxyz" in body["output"]
    # Stopped once far over the cap: it never got to print END.
    assert "END" not in body["output"]
    assert body["exit_code"] == 137 and body["timed_out"] is False
    assert elapsed < 15
    # ru_maxrss is in KiB on Linux: the process did not take in the 50 MB (loosely: under half of it).
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 25 * 1024
    assert debug_containers() == []


def test_output_between_the_cap_and_the_read_limit_keeps_its_end(owner_api, failed_build):
    size = (OUTPUT_LIMIT + OUTPUT_READ_LIMIT) // 2
    response = debug(owner_api, failed_build, f"head -c {size} /dev/zero | tr '\\0' x; echo; echo LAST-LINE")
    body = response.json()
    assert body["exit_code"] == 0
    assert body["output"].startswith(f"[output truncated: the last {OUTPUT_LIMIT:,} of")
    assert body["output"].rstrip().endswith("LAST-LINE")


def test_a_second_concurrent_debug_command_of_one_user_is_refused(owner_api, owner_client, failed_build):
    first: dict = {}

    def run_first() -> None:
        first["result"] = buildservice.debug_in_last_good_layer(failed_build, f"sleep 4; {CGROUP_CPU}")

    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        wait_for(lambda: debug_containers(), timeout=20, message="the first debug container")
        (container,) = debug_containers()
        nano_cpus = subprocess.run(["/usr/bin/docker", "inspect", "-f", "{{.HostConfig.NanoCpus}}", container],
                                   capture_output=True, text=True, check=True).stdout.strip()
        assert nano_cpus == "500000000"
        refused = debug(owner_api, failed_build, "id")
        assert refused.status_code == 429
        assert "already have 1 debug command running" in refused.json()["detail"]
        page = owner_client.post(reverse("builds:build-debug", args=[failed_build.pk]), {"command": "id"})
        assert page.status_code == 429
        assert "already have 1 debug command running" in page.content.decode()
    finally:
        thread.join(timeout=60)
    # The container saw half a CPU: a quota of half its period.
    quota, period = first["result"].output.split()[:2]
    assert int(quota) * 2 == int(period)
    # The slot is free again once the first command is done.
    assert debug(owner_api, failed_build, "echo again").json()["output"].strip() == "again"
    assert debug_containers() == []


def test_the_cpu_limit_comes_from_settings(owner_api, failed_build, settings):
    settings.DEBUG_COMMAND_CPUS = 0.25
    quota, period = debug(owner_api, failed_build, CGROUP_CPU).json()["output"].split()[:2]
    assert int(quota) * 4 == int(period)


@pytest.fixture(scope="module")
def worker_with_default_memory(django_db_setup, django_db_blocker, tmp_path_factory):
    env = {"BUILD_DEFAULT_MEMORY": "48m"}
    with running_worker(tmp_path_factory.mktemp("worker"), env=env) as running, routed_to(running):
        yield running


@pytest.fixture
def shared_busybox(busybox_id):
    access.share_image(BUSYBOX, busybox_id)


@pytest.fixture
def made_builds():
    builds: list[Build] = []
    yield builds
    for build in builds:
        build.refresh_from_db()
    remove_images(*(build.last_good_layer for build in builds))


def test_a_classic_build_without_a_memory_limit_gets_the_default(worker_with_default_memory, shared_busybox,
                                                                owner_api, repository, made_builds):
    """BUILD_DEFAULT_MEMORY is for the classic builder, the one that enforces limits (BuildKit ignores them)."""
    dockerfile = f"FROM {BUSYBOX}\nRUN echo limit=$({CGROUP_MEMORY})\nRUN false\n"
    source = source_from(repository, {"Dockerfile": dockerfile})
    response = owner_api.post(URL, {"source": source.pk, "no_cache": True, "builder": "classic"}, format="json")
    assert response.status_code == 202, response.json()
    build = wait_for_build(Build.objects.get(pk=response.json()["id"]))
    made_builds.append(build)
    lines = owner_api.get(f"{URL}{build.pk}/log/").json()["lines"]
    assert f"limit={48 * 1024 * 1024}" in lines
    # Its own limit wins.
    response = owner_api.post(URL, {"source": source.pk, "no_cache": True, "memory_limit": "40m"}, format="json")
    build = wait_for_build(Build.objects.get(pk=response.json()["id"]))
    made_builds.append(build)
    assert f"limit={40 * 1024 * 1024}" in owner_api.get(f"{URL}{build.pk}/log/").json()["lines"]
