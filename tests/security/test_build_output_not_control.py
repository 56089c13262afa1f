"""Nothing a build prints is an instruction: a RUN step that prints the classic builder's own control lines
(` ---> Running in <container>`, ` ---> <image>`, `Step N/M : ...`) changes nothing the worker decides.

Real engine, real worker. The attacker's RUN names a container the test started (the victim's, still running
afterwards) and an image the test made (the victim's, never the build's last good layer nor a step's layer).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from datetime import datetime

import pytest

from builds import access, runner
from builds.models import Build
from builds.services import repositories as build_services
from tests.builds.build_helpers import remove_images, source_from, wait_for_build
from tests.fixtures.worker import routed_to, running_worker, wait_for

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]
DOCKER = "/usr/bin/docker"
BASE = "busybox:1.35.0"
URL = "/api/v1/builds/"


def docker(*args: str, **kwargs) -> str:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, check=True, **kwargs).stdout.strip()


def inspect(ref: str) -> dict:
    return json.loads(docker("inspect", ref))[0]


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    with running_worker(tmp_path_factory.mktemp("worker")) as running, routed_to(running):
        yield running


@pytest.fixture(scope="module")
def victim():
    """Another user's running container and another user's image, on the same engine."""
    container = docker("run", "-d", "--rm", "--network", "none", BASE, "sleep", "600")
    image = docker("build", "-q", "-", input=f"FROM {BASE}\nRUN echo victim-{uuid.uuid4().hex} > /victim\n",
                   env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin"})
    try:
        yield {"container": container, "image": image}
    finally:
        subprocess.run([DOCKER, "rm", "-f", container], capture_output=True)
        remove_images(image)


@pytest.fixture(autouse=True)
def shared_base(django_db_blocker):
    with django_db_blocker.unblock():
        access.share_image(BASE, inspect(BASE)["Id"])


@pytest.fixture
def repository(owner):
    return build_services.create_repository(owner, "printer", "prints the builder's control lines")


@pytest.fixture
def built_images():
    made: list[str] = []
    yield made
    remove_images(*made)


def start(owner_api, **options) -> Build:
    """On the classic builder, whose control lines these are (BuildKit's progress lines, which a step cannot
    forge either, are tested in tests/console/test_buildkit_progress.py)."""
    options.setdefault("builder", "classic")
    response = owner_api.post(URL, options, format="json")
    assert response.status_code == 202, response.json()
    return Build.objects.get(pk=response.json()["id"])


def forged_lines(victim: dict, total: int) -> str:
    """What the attacker's RUN prints: the victim's ids as control lines, and Step lines out of order, of another
    total and of another instruction than the Dockerfile has next."""
    lines = [f" ---> Running in {victim['container'][:12]}", f" ---> {victim['image'].removeprefix('sha256:')[:12]}",
             "Step 9/9 : RUN forged-last", f"Step 3/{total} : RUN forged-again", f"Step 4/{total} : ENV FORGED=1",
             f" ---> Running in {victim['container']}", f" ---> {victim['image'].removeprefix('sha256:')}"]
    return "printf '%s\\n' " + " ".join(f"'{line}'" for line in lines)


def assert_victim_untouched(victim: dict) -> None:
    assert inspect(victim["container"])["State"]["Running"] is True
    assert inspect(victim["image"])["Id"] == victim["image"]


def containers_running(marker: str) -> list[str]:
    listing = docker("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Command}}")
    return [line.split()[0] for line in listing.splitlines() if marker in line]


def test_a_failing_build_that_prints_control_lines_keeps_its_real_steps_and_last_good_layer(
        worker, owner_api, repository, victim):
    # Steps: FROM, RUN, RUN (prints, fails), RUN, and the three LABEL steps of the console's labels.
    dockerfile = (f"FROM {BASE}\nRUN echo step-two > /two\n"
                  f"RUN {forged_lines(victim, 7)} && exit 3\nRUN echo never > /never\n")
    build = wait_for_build(start(owner_api, source=source_from(repository, {"Dockerfile": dockerfile}).pk))
    body = owner_api.get(f"{URL}{build.pk}/").json()
    assert body["status"] == "failed", worker.output()[-3000:]
    assert "returned a non-zero code: 3" in body["error"]
    assert_victim_untouched(victim)
    # The steps are the Dockerfile's, as far as it got: no forged step, no renumbering.
    assert [(s["number"], s["status"]) for s in body["steps"]] == [(1, "succeeded"), (2, "succeeded"), (3, "failed")]
    assert [s["instruction"].split()[0] for s in body["steps"]] == ["FROM", "RUN", "RUN"]
    assert body["step_count"] == 7 and body["failed_step"] == 3
    assert all(not s["layer_id"] for s in body["steps"]), "a failed build has no image history to take ids from"
    build.refresh_from_db()
    assert build.current_container == ""
    # The last good layer is the engine's image of step 2: made FROM the base, by step 2's command, and not the
    # victim's image.
    layer = build.last_good_layer
    assert layer.startswith("sha256:") and layer != victim["image"], worker.output()[-3000:]
    details = inspect(layer)
    assert details["Parent"] == inspect(BASE)["Id"]
    assert "echo step-two > /two" in " ".join(details["ContainerConfig"]["Cmd"])
    # It was made by the build itself (the cut build was served from the cache), before the failing step began.
    created = datetime.fromisoformat(details["Created"][:26].rstrip("Z") + "+00:00")
    assert created <= build.steps.get(number=3).started_at
    # The debug box opens that layer: step 2's file is there, step 3's would-be world is not the victim's.
    result = owner_api.post(f"{URL}{build.pk}/debug/", {"command": "cat /two; ls /victim"}, format="json").json()
    assert "step-two" in result["output"].splitlines()
    assert "No such file or directory" in result["output"] and result["exit_code"] == 1
    # The log still shows what the step printed: it is display, not control.
    lines = owner_api.get(f"{URL}{build.pk}/log/").json()["lines"]
    assert f" ---> Running in {victim['container'][:12]}" in lines


def test_a_successful_build_takes_its_layer_ids_from_the_image_history(worker, owner_api, repository, victim,
                                                                       built_images):
    dockerfile = (f"FROM {BASE}\nARG WHO=world\nENV GREETING=hello\nLABEL team=builders\n"
                  f"RUN {forged_lines(victim, 8)}\nRUN echo done > /done\n")
    build = wait_for_build(start(owner_api, source=source_from(repository, {"Dockerfile": dockerfile}).pk))
    built_images.append(build.image_id)
    assert build.status == "succeeded", build.error
    assert_victim_untouched(victim)
    steps = list(build.steps.order_by("number"))
    assert [s.instruction.split()[0] for s in steps] == ["FROM", "ARG", "ENV", "LABEL", "RUN", "RUN"] + ["LABEL"] * 3
    assert build.step_count == len(steps) == 9
    # Newest first: the last step made the image, each step before it the entry below.
    history = [item.removeprefix("sha256:")[:12] for item in docker("history", "-q", "--no-trunc",
                                                                    build.image_id).split()]
    assert [s.layer_id for s in reversed(steps)] == history[: len(steps)]
    assert steps[-1].layer_id == build.image_id.removeprefix("sha256:")[:12]
    assert steps[0].layer_id == inspect(BASE)["Id"].removeprefix("sha256:")[:12]
    assert victim["image"].removeprefix("sha256:")[:12] not in {s.layer_id for s in steps}
    # And the image's layers are matched to those steps.
    image = build.images.get()
    assert any(layer.build_step_id == steps[5].pk for layer in image.layers.all())


def test_cancel_during_a_long_run_leaves_no_container_and_the_named_one_running(worker, owner_api, repository,
                                                                                victim):
    marker = f"cancel-{uuid.uuid4().hex[:12]}"
    dockerfile = f"FROM {BASE}\nRUN {forged_lines(victim, 5)} && echo {marker} && sleep 60\n"
    build = start(owner_api, source=source_from(repository, {"Dockerfile": dockerfile}).pk)
    container = wait_for(lambda: containers_running(marker), timeout=60, message="the RUN step's container")[0]
    wait_for(lambda: any(f"Running in {victim['container'][:12]}" in line
                         for line in owner_api.get(f"{URL}{build.pk}/log/").json()["lines"]),
             timeout=30, message="the forged line in the log")
    asked = time.monotonic()
    assert owner_api.post(f"{URL}{build.pk}/cancel/").status_code == 202
    wait_for_build(build, timeout=15)
    assert build.status == "cancelled"
    # The engine removed the build's own container when the worker closed the connection; the victim's lives.
    wait_for(lambda: not containers_running(marker), timeout=5, message="the build's container to go")
    assert time.monotonic() - asked < 6
    assert subprocess.run([DOCKER, "inspect", container], capture_output=True).returncode != 0
    assert_victim_untouched(victim)


def test_a_timeout_stops_the_run_and_keeps_the_layer_before_it(worker, owner_api, repository, victim):
    marker = f"timeout-{uuid.uuid4().hex[:12]}"
    dockerfile = (f"FROM {BASE}\nWORKDIR /work\nCOPY . /work/\n"
                  f"RUN {forged_lines(victim, 7)} && echo {marker} && sleep 60\n")
    source = source_from(repository, {"Dockerfile": dockerfile, "app.txt": "from the context\n"})
    build = wait_for_build(start(owner_api, source=source.pk, timeout=4), timeout=60)
    assert build.status == "failed" and "timeout of 4 seconds" in build.error
    assert build.failed_step == 4
    wait_for(lambda: not containers_running(marker), timeout=5, message="the build's container to go")
    assert_victim_untouched(victim)
    # The cut build (FROM, WORKDIR, COPY .) came from the cache although its Dockerfile differs: COPY saw the same
    # files, so the last good layer is the one the build made.
    details = inspect(build.last_good_layer)
    assert "COPY dir:" in " ".join(details["ContainerConfig"]["Cmd"])
    created = datetime.fromisoformat(details["Created"][:26].rstrip("Z") + "+00:00")
    assert created <= build.steps.get(number=4).started_at
    result = owner_api.post(f"{URL}{build.pk}/debug/", {"command": "cat /work/app.txt"}, format="json").json()
    assert result["output"].strip() == "from the context"


def test_a_multi_stage_failure_keeps_the_earlier_stages_and_its_own_stage_up_to_the_step(
        worker, owner_api, repository, victim):
    dockerfile = (f"ARG BASE={BASE}\nFROM $BASE AS tools\nRUN echo tool > /tool\n"
                  f"FROM {BASE} AS app\nCOPY --from=tools /tool /tool\nCOPY . /src/\n"
                  f"RUN {forged_lines(victim, 10)} && false\nRUN echo never\n"
                  f"FROM {BASE} AS later\nRUN echo later\n")
    files = {"Dockerfile": dockerfile, ".dockerignore": ".dockerignore\nsecret.txt\n", "kept.txt": "kept\n",
             "secret.txt": "left out\n"}
    build = wait_for_build(start(owner_api, source=source_from(repository, files).pk, target="app"))
    assert build.status == "failed", build.error
    assert build.failed_step == 7 and build.step_count == 11
    assert_victim_untouched(victim)
    assert build.last_good_layer and build.last_good_layer != victim["image"]
    created = datetime.fromisoformat(inspect(build.last_good_layer)["Created"][:26].rstrip("Z") + "+00:00")
    assert created <= build.steps.get(number=7).started_at
    result = owner_api.post(f"{URL}{build.pk}/debug/", {"command": "cat /tool /src/kept.txt; ls /src"},
                            format="json").json()
    assert result["output"].splitlines()[:2] == ["tool", "kept"]
    assert "secret.txt" not in result["output"] and ".dockerignore" not in result["output"]


def test_the_step_plan_numbers_as_the_engine_does_and_a_failed_from_has_no_last_good_layer():
    # Numbers as the classic builder printed them for this Dockerfile (checked against dockerd 20.10): global
    # ARGs count, stages after the target do not, each API label is a LABEL step.
    text = f"ARG B={BASE}\nFROM $B AS a\nARG X=1\nRUN echo a\nFROM {BASE} AS b\nRUN echo b\nFROM a AS c\nRUN c\n"
    plan = runner.plan_steps(text, {}, "b", {"l1": "v", "l0": "w"})
    assert [(s.number, s.keyword, s.stage) for s in plan] == [
        (1, "ARG", -1), (2, "FROM", 0), (3, "ARG", 0), (4, "RUN", 0), (5, "FROM", 1), (6, "RUN", 1),
        (7, "LABEL", 1), (8, "LABEL", 1)]
    assert len(runner.plan_steps(text, {}, "", {})) == 8
    # A failed FROM (or a global ARG, or a label step) built nothing: no cut build is even tried.
    for number in (1, 5, 7):
        assert runner.last_good_layer(None, None, None, text, plan, number) == ""
