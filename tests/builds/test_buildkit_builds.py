"""Builds on BuildKit end to end: the API, a real Celery worker, the engine's BuildKit through the Docker CLI.

Mounts (cache, bind, tmpfs, secret), secrets that reach their RUN step and no part of the image, the leak check,
labels in the config with no steps, stages, a failed step's last good layer and its debug box, cancel, the
classic builder where only it will do, and images the owner built before named by the pinned names."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from rest_framework.test import APIClient

from builds import access
from builds.constants import LABEL_BUILD_ID
from builds.models import Build, Image
from builds.runner import reap_lost_builds
from builds.services import repositories
from tests.builds.build_helpers import MULTI_STEP, remove_images, source_from, wait_for_build
from tests.fixtures.worker import routed_to, running_worker, wait_for

pytestmark = [pytest.mark.engine, pytest.mark.worker, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("shared_busybox")]
URL = "/api/v1/builds/"
DOCKER = "/usr/bin/docker"
SECRET = "Tok3n-" + uuid.uuid4().hex


@pytest.fixture
def built_images():
    made: list[str] = []
    yield made
    remove_images(*[image for image in made if image])


def docker(*args: str, check: bool = True) -> str:
    done = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=120, check=False)
    if check:
        assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def start(owner_api, **options) -> Build:
    response = owner_api.post(URL, options, format="json")
    assert response.status_code == 202, response.json()
    return Build.objects.get(pk=response.json()["id"])


def log_of(owner_api, build: Build) -> list[str]:
    return owner_api.get(f"{URL}{build.pk}/log/").json()["lines"]


def saved_bytes(image_id: str) -> bytes:
    """Every byte of `docker save`, layers unpacked (a value in a file of a layer is found as it is)."""
    saved = subprocess.run([DOCKER, "save", image_id], capture_output=True, check=True, timeout=120).stdout
    parts = [saved]
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        for member in outer:
            if member.isfile() and member.name.endswith("layer.tar"):
                parts.append(outer.extractfile(member).read())
    return b"".join(parts)


def test_a_buildkit_build_records_its_steps_labels_and_layers_and_a_rebuild_is_cached(
        worker, owner_api, repository, built_images):
    source = source_from(repository, {"Dockerfile": MULTI_STEP, "app.sh": "echo built by the console\n"})
    build = wait_for_build(start(owner_api, source=source.pk, tags=["console-test/bk-multi:1"],
                                 labels={"stage": "test"}))
    built_images.append(build.image_id)
    body = owner_api.get(f"{URL}{build.pk}/").json()
    assert body["status"] == "succeeded", body["error"]
    assert (body["builder"], body["requested_builder"], body["builder_reason"]) == ("buildkit", "auto", "")
    # BuildKit shows the steps that run something (with their variables filled in); ENV, LABEL and CMD only
    # change the config.
    instructions = [step["instruction"] for step in body["steps"]]
    assert instructions[1:] == ["RUN echo \"hello\" > /greeting", "WORKDIR /app", "COPY app.sh /app/app.sh",
                                "RUN sh /app/app.sh > /app/out"]
    assert instructions[0].startswith("FROM ") and "busybox:1.35.0" in instructions[0]
    assert body["step_count"] == len(body["steps"]) == 5
    assert all(step["status"] == "succeeded" and step["duration_ms"] is not None for step in body["steps"])
    # The labels are in the config, and no history entry says so (the classic builder added LABEL steps).
    inspect = json.loads(docker("image", "inspect", build.image_id))[0]
    labels = inspect["Config"]["Labels"]
    assert labels["stage"] == "test" and labels["team"] == "builders"
    assert labels[LABEL_BUILD_ID] == str(build.pk)
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", build.image_id).splitlines()
    assert not any("io.console" in entry or "stage=test" in entry for entry in history)
    # The step that made a layer names it, and the image's layers name their steps.
    run = build.steps.get(instruction="RUN sh /app/app.sh > /app/out")
    assert run.layer_id and Image.objects.get(image_id=build.image_id).layers.filter(build_step=run).exists()
    assert "#" in "\n".join(log_of(owner_api, build))
    assert docker("run", "--rm", build.image_id) == "built by the console"

    rebuilt = wait_for_build(Build.objects.get(pk=owner_api.post(f"{URL}{build.pk}/rebuild/").json()["id"]))
    assert rebuilt.status == "succeeded", rebuilt.error
    assert all(step.cached for step in rebuilt.steps.exclude(number=1))


def test_cache_bind_and_tmpfs_mounts_reach_their_run_steps(worker, owner_api, repository, built_images):
    marker = uuid.uuid4().hex
    dockerfile = (
        "FROM busybox:1.35.0\n"
        f"RUN --mount=type=cache,target=/cache,id=console-test-{marker} "
        "sh -c 'if [ -f /cache/seen ]; then echo cache-was-kept; else echo first-time; fi; touch /cache/seen; "
        "date +%s%N > /run-at'\n"
        "RUN --mount=type=bind,source=data.txt,target=/mnt/data.txt cat /mnt/data.txt > /copied\n"
        "RUN --mount=type=tmpfs,target=/scratch sh -c 'grep -q \" /scratch tmpfs \" /proc/mounts && echo tmpfs-ok'\n")
    source = source_from(repository, {"Dockerfile": dockerfile, "data.txt": "bound-in\n"})
    first = wait_for_build(start(owner_api, source=source.pk))
    built_images.append(first.image_id)
    assert first.status == "succeeded", first.error
    assert "first-time" in "\n".join(log_of(owner_api, first))
    assert "tmpfs-ok" in "\n".join(log_of(owner_api, first))
    assert docker("run", "--rm", first.image_id, "cat", "/copied") == "bound-in"
    # The bind mount left nothing behind, the tmpfs neither.
    assert docker("run", "--rm", first.image_id, "ls", "/mnt") == ""
    second = wait_for_build(start(owner_api, source=source.pk, no_cache=True))
    built_images.append(second.image_id)
    assert second.status == "succeeded", second.error
    assert "cache-was-kept" in "\n".join(log_of(owner_api, second))


def test_a_secret_reaches_its_run_step_and_no_part_of_the_image(worker, owner_api, repository, built_images):
    digest = hashlib.md5(SECRET.encode()).hexdigest()
    dockerfile = ("FROM busybox:1.35.0\n"
                  "RUN --mount=type=secret,id=TOKEN test \"$(md5sum < /run/secrets/TOKEN | cut -c1-32)\" = "
                  f"\"{digest}\" && echo token-ok && echo \"printing $(cat /run/secrets/TOKEN)\"\n"
                  "RUN ls /run/secrets 2>&1 | wc -l > /secrets-after\n")
    source = source_from(repository, {"Dockerfile": dockerfile})
    build = wait_for_build(start(owner_api, source=source.pk, secrets={"TOKEN": SECRET},
                                 tags=["console-test/bk-secret:1"]))
    built_images.append(build.image_id)
    assert build.status == "succeeded", build.error
    lines = log_of(owner_api, build)
    assert any(line.endswith("token-ok") for line in lines)
    assert any(line.endswith("printing ****") for line in lines)
    body = owner_api.get(f"{URL}{build.pk}/").json()
    assert body["secret_names"] == ["TOKEN"] and "secrets" not in body
    for content in (owner_api.get(f"{URL}{build.pk}/").content, owner_api.get(f"{URL}{build.pk}/log/").content,
                    owner_api.get(URL).content, owner_api.get("/api/v1/images/").content):
        assert SECRET.encode() not in content
    assert SECRET not in docker("history", "--no-trunc", build.image_id)
    assert SECRET not in docker("image", "inspect", build.image_id)
    assert SECRET.encode() not in saved_bytes(build.image_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT build_args::text, secrets FROM builds_build WHERE id = %s", [build.pk])
        public, encrypted = cursor.fetchone()
    assert SECRET not in public and SECRET not in encrypted


def test_a_dockerfile_that_copies_its_secret_into_the_image_fails_and_keeps_no_image(
        worker, owner_api, repository, outsider, built_images):
    # A Dockerfile of this run only, so that no cache of an earlier run can serve its step.
    dockerfile = (f"FROM busybox:1.35.0\nRUN --mount=type=secret,id=TOKEN echo {uuid.uuid4().hex} && "
                  "cp /run/secrets/TOKEN /kept-token\n")
    source = source_from(repository, {"Dockerfile": dockerfile})
    build = wait_for_build(start(owner_api, source=source.pk, secrets={"TOKEN": SECRET},
                                 tags=["console-test/bk-leak:1"]))
    assert build.status == "failed"
    assert "The secret TOKEN is in the image" in build.error and "kept-token" in build.error
    assert SECRET not in build.error and "removed" in build.error
    assert build.image_id == "" and not Image.objects.filter(build=build).exists()
    assert docker("image", "inspect", access.engine_name(build.owner, "console-test/bk-leak:1"), check=False) in (
        "", "[]")
    # BuildKit's cache keeps that step, but only for this owner with this value: another user's same Dockerfile,
    # with no secret, runs the step itself (and fails: there is no secret to copy) instead of being served the
    # owner's copied secret from the cache.
    outsider_api = APIClient()
    outsider_api.force_authenticate(outsider)
    their_repository = repositories.create_repository(outsider, "theirs")
    theirs = wait_for_build(start(outsider_api, source=source_from(their_repository, {"Dockerfile": dockerfile}).pk))
    assert theirs.status == "failed"
    assert not any(step.cached for step in theirs.steps.exclude(number=1))


def test_secret_args_become_secrets_where_a_mount_reads_them_and_are_refused_as_args(
        worker, owner_api, repository, built_images):
    mounted = source_from(repository, {"Dockerfile": "FROM busybox:1.35.0\n"
                                                     "RUN --mount=type=secret,id=TOKEN test -s /run/secrets/TOKEN\n"})
    build = wait_for_build(start(owner_api, source=mounted.pk, build_args={"TOKEN": SECRET}, secret_args=["TOKEN"]))
    built_images.append(build.image_id)
    assert build.status == "succeeded", build.error
    assert build.secret_names == ["TOKEN"] and build.build_args == {"TOKEN": "****"}
    assert any("secret_args is deprecated" in line for line in log_of(owner_api, build))
    assert SECRET not in docker("history", "--no-trunc", build.image_id)
    as_arg = source_from(repository, {"Dockerfile": "FROM busybox:1.35.0\nARG TOKEN\nRUN test -n \"$TOKEN\"\n"})
    refused = owner_api.post(URL, {"source": as_arg.pk, "build_args": {"TOKEN": SECRET}, "secret_args": ["TOKEN"]},
                             format="json")
    assert refused.status_code == 400 and "RUN --mount=type=secret,id=TOKEN" in refused.json()["secret_args"][0]


def test_a_failed_step_has_a_last_good_layer_to_debug_in(worker, owner_api, repository):
    dockerfile = "FROM busybox:1.35.0\nRUN echo made-it > /ok\nRUN cat /missing-file\nRUN echo never\n"
    source = source_from(repository, {"Dockerfile": dockerfile})
    build = wait_for_build(start(owner_api, source=source.pk))
    body = owner_api.get(f"{URL}{build.pk}/").json()
    assert body["status"] == "failed" and body["builder"] == "buildkit"
    assert body["failed_step"] == 3 and body["steps"][2]["instruction"] == "RUN cat /missing-file"
    assert [step["status"] for step in body["steps"]] == ["succeeded", "succeeded", "failed"]
    assert "/missing-file" in body["error"]
    assert body["last_good_layer"].startswith("sha256:")
    assert any("can't open '/missing-file'" in line for line in log_of(owner_api, build))
    result = owner_api.post(f"{URL}{build.pk}/debug/", {"command": "cat /ok"}, format="json").json()
    assert "made-it" in result["output"] and result["exit_code"] == 0
    remove_images(body["last_good_layer"])


def test_stages_run_in_parallel_show_their_names_and_a_target_builds_alone(
        worker, owner_api, repository, built_images):
    # Seconds since boot, to the hundredth (busybox's date has no %N).
    timed = "cut -d' ' -f1 /proc/uptime > /{0}.start && sleep 2 && cut -d' ' -f1 /proc/uptime > /{0}.end"
    dockerfile = (f"FROM busybox:1.35.0 AS one\nRUN {timed.format('one')}\n"
                  f"FROM busybox:1.35.0 AS two\nRUN {timed.format('two')}\n"
                  "FROM busybox:1.35.0 AS final\nCOPY --from=one /one.start /one.end /\n"
                  "COPY --from=two /two.start /two.end /\n"
                  "FROM final AS extra\nRUN echo extra > /extra\n")
    source = source_from(repository, {"Dockerfile": dockerfile})
    build = wait_for_build(start(owner_api, source=source.pk, target="final", no_cache=True))
    built_images.append(build.image_id)
    assert build.status == "succeeded", build.error
    stages = {step.stage for step in build.steps.all()}
    assert {"one", "two", "final"} <= stages and "extra" not in stages
    # The two sleeping stages overlapped.
    times = {name: float(docker("run", "--rm", build.image_id, "cat", f"/{name}"))
             for name in ("one.start", "one.end", "two.start", "two.end")}
    assert times["one.start"] < times["two.end"] and times["two.start"] < times["one.end"]
    assert "extra" not in docker("run", "--rm", build.image_id, "ls", "/").split()


def test_cancel_during_a_long_run_stops_the_build_within_seconds(worker, owner_api, repository):
    marker = f"bk-cancel-{uuid.uuid4().hex[:12]}"
    # The shell stays the RUN's process (a last command would replace it), so its arguments show the marker.
    source = source_from(repository, {"Dockerfile": f"FROM busybox:1.35.0\nRUN echo {marker} && sleep 300 && "
                                                    f"echo {marker}\n"})
    build = start(owner_api, source=source.pk)
    wait_for(lambda: processes_with(marker), timeout=60, message="the RUN to start")
    asked = time.monotonic()
    assert owner_api.post(f"{URL}{build.pk}/cancel/").status_code == 202
    wait_for_build(build, timeout=20)
    assert build.status == "cancelled"
    assert time.monotonic() - asked < 10
    wait_for(lambda: not processes_with(marker), timeout=15, message="BuildKit to stop the RUN")


def processes_with(marker: str) -> list[str]:
    listing = subprocess.run(["ps", "-eww", "-o", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in listing.splitlines() if marker in line and "ps -eww" not in line]


def test_a_worker_killed_mid_build_leaves_no_build_running_on_the_engine(owner_api, repository, tmp_path):
    marker = f"bk-killed-{uuid.uuid4().hex[:12]}"
    source = source_from(repository, {"Dockerfile": f"FROM busybox:1.35.0\nRUN echo {marker} && sleep 300 && "
                                                    f"echo {marker}\n"})
    with running_worker(tmp_path, concurrency=1) as doomed, routed_to(doomed):
        build = start(owner_api, source=source.pk)
        wait_for(lambda: processes_with(marker), timeout=60, message="the RUN to start")
        doomed.kill()
    # The CLI dies with its worker (PR_SET_PDEATHSIG) and BuildKit cancels the build whose session went.
    wait_for(lambda: not processes_with(marker), timeout=20, message="BuildKit to stop the lost build")
    assert reap_lost_builds(older_than=timedelta(seconds=0)) == [build.pk]
    build.refresh_from_db()
    assert build.status == "failed"


def test_memory_limits_fall_back_to_the_classic_builder_which_enforces_them(worker, owner_api, repository,
                                                                           built_images):
    dockerfile = ("FROM busybox:1.35.0\nRUN cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                  "/sys/fs/cgroup/memory.max 2>/dev/null; true\n")
    source = source_from(repository, {"Dockerfile": dockerfile})
    build = wait_for_build(start(owner_api, source=source.pk, memory_limit="64m", no_cache=True))
    built_images.append(build.image_id)
    assert build.status == "succeeded", build.error
    assert build.builder == "classic" and "memory or CPU limits" in build.builder_reason
    assert str(64 * 1024 * 1024) in "\n".join(log_of(owner_api, build))
    refused = owner_api.post(URL, {"source": source.pk, "memory_limit": "64m", "builder": "buildkit"},
                             format="json")
    assert refused.status_code == 400 and "BuildKit ignores memory" in refused.json()["builder"][0]


def test_an_image_the_owner_built_is_built_from_by_its_pinned_name(worker, owner_api, repository, built_images):
    base = wait_for_build(start(owner_api, source=source_from(repository, {
        "Dockerfile": "FROM busybox:1.35.0\nRUN echo base-layer > /base\n"}).pk, tags=["console-test/bk-base:1"]))
    built_images.append(base.image_id)
    assert base.status == "succeeded", base.error
    child_source = source_from(repository, {"Dockerfile": "FROM console-test/bk-base:1\nRUN cat /base > /child\n"})
    child = wait_for_build(start(owner_api, source=child_source.pk))
    built_images.append(child.image_id)
    assert child.status == "succeeded", child.error
    # The step shows the name the user wrote; the engine was sent the owner's pinned name.
    assert child.steps.get(number=1).instruction.endswith("console-test/bk-base:1")
    assert docker("run", "--rm", child.image_id, "cat", "/child") == "base-layer"
    assert docker("image", "inspect", "-f", "{{.Id}}", access.pinned_name(child.owner, base.image_id)) == \
        base.image_id


def test_a_syntax_directive_does_not_make_the_engine_fetch_a_frontend(worker, owner_api, repository, built_images):
    """No registry is reachable here: a frontend image named by `# syntax=` would fail the build, and on a
    machine that reaches one it would run code the operator never chose in the builder."""
    source = source_from(repository, {"Dockerfile": "# syntax=example.invalid/evil-frontend:1\n"
                                                    "FROM busybox:1.35.0\nRUN echo built > /built\n"})
    build = wait_for_build(start(owner_api, source=source.pk))
    built_images.append(build.image_id)
    assert build.status == "succeeded", build.error
    assert build.builder == "buildkit"
    assert docker("run", "--rm", build.image_id, "cat", "/built") == "built"
