"""Builds end to end: API request, a real Celery worker, the real engine's classic builder."""

from __future__ import annotations

import subprocess
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from builds import access
from builds.constants import LABEL_BUILD_ID, LABEL_CREATED, LABEL_REVISION
from builds.models import Build, Image
from builds.runner import reap_lost_builds
from tests.builds.build_helpers import MULTI_STEP, containers_with_ancestor, remove_images, source_from, wait_for_build
from tests.fixtures.worker import routed_to, running_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("shared_busybox")]
URL = "/api/v1/builds/"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def built_images():
    made: list[str] = []
    yield made
    remove_images(*made)


def containers_running(marker: str) -> list[str]:
    """Ids of the engine's containers whose command holds `marker` (a test's own RUN step)."""
    listing = subprocess.run(["/usr/bin/docker", "ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Command}}"],
                             capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in listing.splitlines() if marker in line]


def start(owner_api, **options) -> Build:
    """Start a build on the classic builder (this file's subject; tests/builds/test_buildkit_builds.py has
    BuildKit's), unless the options ask for another."""
    options.setdefault("builder", "classic")
    response = owner_api.post(URL, options, format="json")
    assert response.status_code == 202, response.json()
    # The worker may have claimed it before the answer is written.
    assert response.json()["status"] in ("queued", "running")
    return Build.objects.get(pk=response.json()["id"])


def test_a_multi_step_build_records_steps_labels_and_log_then_hits_the_cache(
        worker, owner_api, repository, built_images):
    source = source_from(repository, {"Dockerfile": MULTI_STEP, "app.sh": "echo built by the console\n"})
    build = wait_for_build(start(owner_api, source=source.pk, tags=["console-test/multi:1", "console-test/multi:2"]))
    built_images.append(build.image_id)
    body = owner_api.get(f"{URL}{build.pk}/").json()
    assert body["status"] == "succeeded", body["error"]
    # The engine adds the console's labels as LABEL steps after the Dockerfile's own eight.
    assert body["step_count"] == len(body["steps"]) > 8
    assert [s["number"] for s in body["steps"]] == list(range(1, body["step_count"] + 1))
    assert all(s["instruction"].startswith("LABEL ") for s in body["steps"][8:])
    assert all(s["status"] == "succeeded" and s["layer_id"] and s["duration_ms"] is not None for s in body["steps"])
    assert body["steps"][3]["instruction"] == 'RUN echo "$GREETING" > /greeting'
    image = Image.objects.get(pk=body["image"])
    assert image.image_id == body["image_id"]
    assert set(image.tags) == {"console-test/multi:1", "console-test/multi:2"}
    assert image.labels["team"] == "builders"
    assert image.labels[LABEL_BUILD_ID] == str(build.pk)
    assert image.labels[LABEL_REVISION] == f"sha256:{source.sha256}"
    assert LABEL_CREATED in image.labels
    # On the engine the names are the owner's own (builds/access.py): console-u<id>/console-test/multi:1.
    output = subprocess.run(["docker", "run", "--rm", access.engine_name(image.owner, "console-test/multi:1")],
                            capture_output=True, text=True)
    assert output.stdout == "built by the console\n"
    log = owner_api.get(f"{URL}{build.pk}/log/").json()
    assert log["finished"] is True
    assert f"Step 1/{body['step_count']} : FROM busybox:1.35.0" in log["lines"]
    assert log["lines"][-1] == "Build succeeded."
    later = owner_api.get(f"{URL}{build.pk}/log/?offset={log['next_offset'] - 1}").json()
    assert later["lines"] == ["Build succeeded."]

    again = wait_for_build(start(owner_api, source=source.pk))
    built_images.append(again.image_id)
    assert again.status == "succeeded"
    # The Dockerfile's own steps come from the cache (the label steps the engine adds may not: one holds the time).
    assert all(step.cached for step in again.steps.filter(number__range=(2, 8)))

    fresh = wait_for_build(start(owner_api, source=source.pk, no_cache=True))
    built_images.append(fresh.image_id)
    assert fresh.status == "succeeded"
    assert not any(step.cached for step in fresh.steps.all())
    assert fresh.image_id != build.image_id


def test_a_target_stage_is_built_alone(worker, owner_api, repository, built_images):
    dockerfile = ("FROM busybox:1.35.0 AS base\nRUN echo base > /base\n"
                  "FROM base AS test\nRUN echo test > /test\n"
                  "FROM base AS final\nRUN echo final > /final\n")
    source = source_from(repository, {"Dockerfile": dockerfile})
    build = wait_for_build(start(owner_api, source=source.pk, target="test", tags=["console-test/stage:test"]))
    built_images.append(build.image_id)
    assert build.status == "succeeded", build.error
    files = subprocess.run(["docker", "run", "--rm", build.image_id, "ls", "/"], capture_output=True,
                           text=True).stdout.split()
    assert "test" in files and "base" in files and "final" not in files


def test_build_args_reach_run_and_secret_args_read_as_args_are_refused(worker, owner_api, repository, built_images):
    """A secret build arg read by an ARG would be written into the image's history (`|1 TOKEN=<value>`): refused,
    with the way to pass it instead; secrets need BuildKit, so the classic builder takes none."""
    secret = "s3cr3t-Value-9f2"
    dockerfile = "FROM busybox:1.35.0\nARG GREETING\nARG TOKEN\nRUN echo \"$GREETING\" > /greeting\n"
    source = source_from(repository, {"Dockerfile": dockerfile})
    refused = owner_api.post(URL, {"source": source.pk, "build_args": {"GREETING": "hi there", "TOKEN": secret},
                                   "secret_args": ["TOKEN"], "builder": "classic"}, format="json")
    assert refused.status_code == 400
    assert "image's history" in refused.json()["secret_args"][0] and secret not in refused.content.decode()
    refused = owner_api.post(URL, {"source": source.pk, "secrets": {"TOKEN": secret}, "builder": "classic"},
                             format="json")
    assert refused.status_code == 400 and "need BuildKit" in refused.json()["secrets"][0]
    assert not Build.objects.exists()
    build = wait_for_build(start(owner_api, source=source.pk, build_args={"GREETING": "hi there"}))
    built_images.append(build.image_id)
    assert build.status == "succeeded", build.error
    assert (build.builder, build.builder_reason) == ("classic", "asked for")
    greeting = subprocess.run(["docker", "run", "--rm", build.image_id, "cat", "/greeting"], capture_output=True,
                              text=True).stdout
    assert greeting == "hi there\n"


def test_a_memory_limit_makes_an_allocating_run_fail(worker, owner_api, repository):
    dockerfile = "FROM busybox:1.35.0\nRUN echo small\nRUN dd if=/dev/zero of=/dev/null bs=64M count=1\n"
    source = source_from(repository, {"Dockerfile": dockerfile})
    build = wait_for_build(start(owner_api, source=source.pk, memory_limit="16m"))
    assert build.status == "failed"
    assert build.failed_step == 3
    assert "returned a non-zero code" in build.error


def test_a_failing_step_keeps_its_last_good_layer_for_debugging(worker, owner_api, repository):
    dockerfile = "FROM busybox:1.35.0\nRUN echo made-it > /ok\nRUN cat /missing-file\nRUN echo never\n"
    source = source_from(repository, {"Dockerfile": dockerfile})
    build = wait_for_build(start(owner_api, source=source.pk))
    body = owner_api.get(f"{URL}{build.pk}/").json()
    assert body["status"] == "failed"
    assert body["failed_step"] == 3
    assert "The command '/bin/sh -c cat /missing-file' returned a non-zero code: 1" in body["error"]
    assert body["last_good_layer"].startswith("sha256:")
    assert body["debug_command"] == f"docker run --rm -ti {body['last_good_layer']} /bin/sh"
    assert [s["status"] for s in body["steps"]] == ["succeeded", "succeeded", "failed"]
    lines = owner_api.get(f"{URL}{build.pk}/log/").json()["lines"]
    assert any(line.startswith("ERROR: The command") for line in lines)
    # The engine colours a step's stderr; the log keeps the words, not the escape codes, and no blank lines.
    assert "cat: can't open '/missing-file': No such file or directory" in lines
    assert all(line.strip() and "\x1b" not in line for line in lines)
    result = owner_api.post(f"{URL}{build.pk}/debug/", {"command": "cat /ok; ls /missing-file"}, format="json").json()
    # stdout and stderr come back merged, in whichever order the engine logged them.
    assert "made-it" in result["output"].splitlines()
    assert "No such file or directory" in result["output"]
    assert result["exit_code"] == 1 and result["timed_out"] is False
    assert containers_with_ancestor(body["last_good_layer"]) == []
    rebuilt = owner_api.post(f"{URL}{build.pk}/rebuild/").json()
    assert rebuilt["rebuild_of"] == build.pk and rebuilt["dockerfile"] == "Dockerfile"
    wait_for_build(Build.objects.get(pk=rebuilt["id"]))


def test_cancel_during_a_long_run_ends_within_5_seconds_and_leaves_no_container(worker, owner_api, repository):
    marker = f"cancel-{uuid.uuid4().hex[:12]}"
    source = source_from(repository, {"Dockerfile": f"FROM busybox:1.35.0\nRUN echo {marker} && sleep 60\n"})
    build = start(owner_api, source=source.pk)
    # The engine's own list names the RUN's container (the worker does not know it: it reads no id from text).
    container = wait_for(lambda: containers_running(marker), timeout=60, message="the RUN step's container")[0]
    asked = time.monotonic()
    assert owner_api.post(f"{URL}{build.pk}/cancel/").status_code == 202
    wait_for_build(build, timeout=15)
    assert time.monotonic() - asked < 5
    assert build.status == "cancelled"
    assert build.steps.get(number=2).status == "cancelled"
    # The worker closed its connection; the engine kills and removes the RUN's container itself, at once.
    wait_for(lambda: subprocess.run(["docker", "inspect", container], capture_output=True).returncode != 0,
             timeout=5, message="the engine to remove the RUN's container")
    assert time.monotonic() - asked < 6


def test_a_queued_build_cancelled_never_starts(owner_api, repository, settings):
    settings.BUILDS_PER_USER = 1
    source = source_from(repository, {"Dockerfile": "FROM busybox:1.35.0\n"})
    # No worker consumes this queue: the first build holds the only place, the second waits.
    first, second = start(owner_api, source=source.pk), start(owner_api, source=source.pk)
    assert owner_api.get(f"{URL}{second.pk}/").json()["queue_position"] == 1
    assert owner_api.post(f"{URL}{second.pk}/cancel/").status_code == 202
    second.refresh_from_db()
    assert second.status == "cancelled" and second.started_at is None
    Build.objects.filter(pk=first.pk).update(status="cancelled")


def test_the_per_user_limit_holds_builds_in_the_queue(worker, owner_api, repository, settings):
    settings.BUILDS_PER_USER = 2
    source = source_from(repository, {"Dockerfile": "FROM busybox:1.35.0\nRUN sleep 3\n"})
    builds = [start(owner_api, source=source.pk, no_cache=True) for _ in range(3)]
    assert owner_api.get(f"{URL}{builds[2].pk}/").json()["queue_position"] == 1
    for build in builds[:2]:
        wait_for_build(build, state={"running"})
    builds[2].refresh_from_db()
    assert builds[2].status == "queued"
    for build in builds:
        wait_for_build(build)
        assert build.status == "succeeded", build.error
    assert builds[2].started_at >= min(b.finished_at for b in builds[:2])


def test_a_worker_killed_mid_build_leaves_a_failed_build_and_no_container(owner_api, repository, tmp_path):
    marker = f"killed-{uuid.uuid4().hex[:12]}"
    source = source_from(repository, {"Dockerfile": f"FROM busybox:1.35.0\nRUN echo {marker} && sleep 60\n"})
    with running_worker(tmp_path, concurrency=1) as doomed, routed_to(doomed):
        build = start(owner_api, source=source.pk)
        container = wait_for(lambda: containers_running(marker), timeout=60, message="the RUN step's container")[0]
        doomed.kill()
    build.refresh_from_db()
    assert build.status == "running"
    # The dead worker's connection closed: the engine itself kills and removes the RUN's container, with no id
    # from anyone.
    wait_for(lambda: subprocess.run(["docker", "inspect", container], capture_output=True).returncode != 0,
             timeout=15, message="the engine to remove the lost build's container")
    assert reap_lost_builds(older_than=timedelta(seconds=0)) == [build.pk]
    build.refresh_from_db()
    assert build.status == "failed"
    assert "worker running this build was lost" in build.error


def test_the_hello_example_builds_with_its_labels(worker, owner_api, repository, built_images):
    example = ROOT / "examples" / "hello"
    files = {str(p.relative_to(example)): p.read_bytes() for p in example.rglob("*") if p.is_file()}
    source = source_from(repository, files)
    build = wait_for_build(start(owner_api, source=source.pk, tags=["console-test/hello:1"]))
    built_images.append(build.image_id)
    assert build.status == "succeeded", build.error
    image = build.images.get()
    assert image.labels["org.opencontainers.image.title"] == "hello"
    assert image.config["exposed_ports"] == ["8080/tcp"]
    assert "WHO=World" in image.config["env"]
    assert image.config["user"] == "nobody"
    assert any(layer.build_step_id for layer in image.layers.all())
