"""Right after a build, before any analysis has run, each layer of the image record names the instruction that made
it, exactly as the image config's history says (read here from `docker save`, as the analysis would); the analysis
then adds files and moves no layer. On the real engine, through the console's build path (the API, a real worker,
BuildKit and the classic builder), for examples/hello and for a Dockerfile of the cases the history's sizes cannot
tell apart (folders only, nothing changed, an empty folder copied, WORKDIR of a new and of an existing folder,
config-only instructions, a second stage), and for a BuildKit build FROM a classic image whose own history leaves
it open (the record reads the config then).

The worker here consumes builds only: the analysis it asks for when a build ends waits in a queue nobody reads,
and the test runs it itself once it has looked at the record."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from builds.models import Build, Image
from builds.runner import run_analysis
from builds.services import images
from console.celery import app
from console.engine import Engine
from console.engine.images import image_history, inspect_image
from tests.builds.archive_factory import tar_bytes
from tests.builds.build_helpers import remove_images, wait_for_build
from tests.fixtures.worker import routed_to, running_worker

pytestmark = [pytest.mark.engine, pytest.mark.worker, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("shared_busybox")]
URL = "/api/v1/builds/"
DOCKER = "/usr/bin/docker"
HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello"
TRICKY = """FROM busybox:1.35.0 AS first
RUN echo made > /made
FROM busybox:1.35.0
LABEL purpose=layers
ENV A=1
RUN mkdir -p /x/y
RUN true
COPY f.txt /f.txt
COPY empty/ /empty/
WORKDIR /new
WORKDIR /bin
WORKDIR /
RUN touch /emptyfile && rm /bin/vi
COPY --from=first /made /made
USER nobody
CMD ["sh"]
"""
TRICKY_FILES = [("Dockerfile", TRICKY.encode()), ("f.txt", b"hello\n"), ("empty", None, tarfile.DIRTYPE)]
# A classic image whose history has both a zero-size layer and a step that changed nothing, then a BuildKit build
# FROM it: no intermediate images for the base's entries.
OPEN_BASE = "FROM busybox:1.35.0\nRUN mkdir /made-by-base\nRUN true\n"
ON_OPEN_BASE = "FROM {base}\nRUN mkdir /made-on-top\nENV B=2\n"


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A worker that runs builds and nothing else: every other task goes to a queue no worker reads."""
    held = f"held-{uuid.uuid4().hex[:8]}"
    with running_worker(tmp_path_factory.mktemp("worker"), queues=("builds",),
                        env={"CELERY_DEFAULT_QUEUE": held}) as running:
        with routed_to(replace(running, queues={**running.queues, "celery": held})):
            yield running
    # The analyses asked for while it ran were run by the tests themselves: their messages go.
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(held)


@pytest.fixture
def built_images():
    made: list[str] = []
    yield made
    remove_images(*reversed([image for image in made if image]))


def source_of(repository, members: list[tuple]) -> int:
    from builds.services import repositories

    return repositories.add_archive_source(repository, io.BytesIO(tar_bytes(members)), "tree.tar").pk


def hello_members() -> list[tuple]:
    return [(str(path.relative_to(HELLO)), path.read_bytes()) for path in sorted(HELLO.rglob("*")) if path.is_file()]


def build_of(owner_api, built_images, source: int, builder: str, tag: str) -> Build:
    response = owner_api.post(URL, {"source": source, "tags": [tag], "builder": builder}, format="json")
    assert response.status_code == 202, response.json()
    build = wait_for_build(Build.objects.get(pk=response.json()["id"]))
    built_images.append(build.image_id)
    assert build.status == "succeeded", build.error
    assert build.builder == builder
    return build


def saved_config(image_id: str) -> dict:
    """The image config from `docker save`: the ground truth of which history entry made which layer."""
    saved = subprocess.run([DOCKER, "save", image_id], capture_output=True, check=True, timeout=120).stdout
    with tarfile.open(fileobj=io.BytesIO(saved)) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
        return json.load(archive.extractfile(manifest[0]["Config"]))


def recorded(image: Image) -> list[tuple[str, bool, str]]:
    return list(image.layers.order_by("index").values_list("created_by", "empty_layer", "diff_id"))


def assert_exact(image: Image) -> list[tuple[str, bool, str]]:
    """The record's layers are the config's history, entry by entry, each layer on the entry that made it."""
    config = saved_config(image.image_id)
    diff_ids = iter(config["rootfs"]["diff_ids"])
    expected = [(entry.get("created_by", ""), bool(entry.get("empty_layer")),
                 "" if entry.get("empty_layer") else next(diff_ids)) for entry in config["history"]]
    assert next(diff_ids, None) is None
    rows = recorded(image)
    assert rows == expected
    return rows


def analyse_and_check_nothing_moved(image: Image) -> Image:
    before = recorded(image)
    image.refresh_from_db()
    assert image.analysis_status == "queued", "the analysis ran before the record was checked"
    run_analysis(image.analysis_id)
    image = Image.objects.get(pk=image.pk)
    assert image.analysis_status == "succeeded", image.analysis_error
    assert recorded(image) == before
    return image


def row_of(rows: list[tuple[str, bool, str]], ending: str) -> tuple[str, bool, str]:
    """The one row whose instruction ends with `ending` (BuildKit's RUN ends with ` # buildkit`)."""
    [row] = [row for row in rows if row[0].removesuffix(" # buildkit").endswith(ending)]
    return row


def files_of(image: Image, instruction: str) -> set[str]:
    [layer] = [layer for layer in image.layers.all() if instruction in layer.created_by]
    return {change["path"] for change in layer.files or []}


@pytest.mark.parametrize("builder", ["buildkit", "classic"])
def test_the_hello_image_is_exact_from_its_first_second(worker, owner_api, repository, built_images, builder):
    build = build_of(owner_api, built_images, source_of(repository, hello_members()), builder,
                     f"console-test/exact-hello:{builder}")
    image = Image.objects.get(build=build)
    rows = assert_exact(image)
    mkdir = next(row for row in rows if "mkdir -p /app/www/cgi-bin" in row[0])
    label = next(row for row in rows if "LABEL org.opencontainers.image.title=hello" in row[0])
    # The layer the sizes could not place (the RUN mkdir made folders only: size 0) is the RUN's, not the LABEL's.
    assert not mkdir[1] and mkdir[2] and label[1] and not label[2]
    # WORKDIR /app: BuildKit makes a layer (empty: /app was there), the classic builder none.
    workdir = next(row for row in rows if "WORKDIR /app" in row[0])
    assert workdir[1] is (builder == "classic")

    image = analyse_and_check_nothing_moved(image)
    assert {"app", "app/www", "app/www/cgi-bin"} <= files_of(image, "mkdir -p /app/www/cgi-bin")
    assert files_of(image, "LABEL org.opencontainers.image.title=hello") == set()
    if builder == "buildkit":
        step = build.steps.get(instruction="RUN mkdir -p /app/www/cgi-bin")
        assert step.layer_id == mkdir[2].removeprefix("sha256:")[:12]


@pytest.mark.parametrize("builder", ["buildkit", "classic"])
def test_steps_the_sizes_cannot_tell_apart_are_exact(worker, owner_api, repository, built_images, builder):
    build = build_of(owner_api, built_images, source_of(repository, TRICKY_FILES), builder,
                     f"console-test/exact-tricky:{builder}")
    image = Image.objects.get(build=build)
    rows = assert_exact(image)
    # Nothing changed: no layer on the classic builder, an (empty) layer on BuildKit.
    assert row_of(rows, "-c true")[1] is (builder == "classic")
    assert row_of(rows, "WORKDIR /bin")[1] is (builder == "classic")
    assert row_of(rows, "WORKDIR /")[1] is True
    assert row_of(rows, "WORKDIR /new")[1] is False

    image = analyse_and_check_nothing_moved(image)
    assert {"x", "x/y"} <= files_of(image, "mkdir -p /x/y")
    assert "empty" in files_of(image, "/empty/")
    assert "made" in files_of(image, "/made")


def test_a_buildkit_image_on_a_base_the_history_leaves_open_is_exact(worker, owner_api, repository, built_images,
                                                                    monkeypatch):
    base = build_of(owner_api, built_images, source_of(repository, [("Dockerfile", OPEN_BASE.encode())]), "classic",
                    "console-test/exact-open-base:1")
    on_top = build_of(owner_api, built_images,
                      source_of(repository, [("Dockerfile", ON_OPEN_BASE.format(base=base.tags[0]).encode())]),
                      "buildkit", "console-test/exact-on-open-base:1")
    base_rows = assert_exact(Image.objects.get(build=base))
    rows = assert_exact(Image.objects.get(build=on_top))
    assert rows[:len(base_rows)] == base_rows
    # The history alone leaves the base's `RUN mkdir` and `RUN true` open, and BuildKit keeps no image for them:
    # the record read the config (asked again here, where it can be watched).
    read, original = [], images.read_config
    monkeypatch.setattr(images, "read_config", lambda chunks, image_id: read.append(image_id) or
                        original(chunks, image_id))
    with Engine.for_builds() as engine:
        history = image_history(engine, on_top.image_id)
        diff_ids = inspect_image(engine, on_top.image_id)["RootFS"]["Layers"]
        made = images.layer_makers(engine, on_top.image_id, history, diff_ids)
    assert read == [on_top.image_id] and made == [not empty for _text, empty, _diff_id in rows]
    analyse_and_check_nothing_moved(Image.objects.get(build=base))
    analyse_and_check_nothing_moved(Image.objects.get(build=on_top))
