"""The leak check over real `docker save` streams: images built FROM busybox:1.35.0 on the engine's classic
builder (through the docker CLI), exported with console.engine.images.export_image. A build argument written
into a file leaks in a layer (and, as the classic builder records it, in the history); an ENV leaks in the
config and the history; a clean image has no leak. Every image is tagged console-test/leak-<random> and
removed by id at the end of its test.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from builds.leakcheck import HISTORY, IMAGE_CONFIG, find_leaks
from console.engine import Engine
from console.engine.images import export_image
from tests.builds.build_helpers import remove_images

pytestmark = pytest.mark.engine


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Builds a Dockerfile with the classic builder; the images built are removed by id after the test."""
    built: list[str] = []

    def run(dockerfile: str, build_args: dict[str, str] | None = None) -> str:
        context = tmp_path / f"context-{len(built)}"
        context.mkdir()
        (context / "Dockerfile").write_text(dockerfile)
        args = ["docker", "build", "-q", "--rm", "--force-rm", "-t", f"console-test/leak-{uuid.uuid4().hex[:12]}"]
        for key, value in (build_args or {}).items():
            args += ["--build-arg", f"{key}={value}"]
        completed = subprocess.run([*args, str(context)], env={**os.environ, "DOCKER_BUILDKIT": "0"},
                                   capture_output=True, text=True, timeout=300, check=False)
        assert completed.returncode == 0, completed.stderr
        image_id = completed.stdout.strip().splitlines()[-1]
        built.append(image_id)
        return image_id

    yield run
    remove_images(*built)


def leaks_in(image_id: str, secrets: dict[str, str]) -> list[tuple[str, str]]:
    with Engine.for_builds(timeout=120) as engine:
        leaks = find_leaks(export_image(engine, image_id), secrets)
    for value in secrets.values():
        assert value not in repr(leaks)
    return [(leak.secret, leak.where) for leak in leaks]


def test_a_build_argument_written_to_a_file_is_found_in_its_layer(build):
    token = f"tok-{uuid.uuid4().hex}"
    image_id = build('FROM busybox:1.35.0\nARG TOKEN\nRUN echo "$TOKEN" > /token.txt\nRUN echo done > /done\n',
                     {"TOKEN": token})
    places = leaks_in(image_id, {"TOKEN": token, "UNUSED": f"unused-{uuid.uuid4().hex}"})
    # busybox has one layer; the RUN made the second. The classic builder also writes `|1 TOKEN=<value>` into
    # the history of each RUN after the ARG (and its legacy layer json, the "image config" here).
    assert ("TOKEN", "layer 2: token.txt") in places
    assert ("TOKEN", HISTORY) in places
    assert {secret for secret, _ in places} == {"TOKEN"}


def test_an_env_value_is_found_in_the_config_and_the_history(build):
    password = f"pw-{uuid.uuid4().hex}"
    image_id = build(f"FROM busybox:1.35.0\nENV DB_PASSWORD={password}\nCMD [\"sh\"]\n")
    places = leaks_in(image_id, {"DB_PASSWORD": password})
    assert places[:2] == [("DB_PASSWORD", IMAGE_CONFIG), ("DB_PASSWORD", HISTORY)]
    assert not any(where.startswith("layer") for _, where in places)


def test_a_clean_image_has_no_leak(build):
    image_id = build("FROM busybox:1.35.0\nRUN echo hello > /hello\nENV MODE=production\n")
    assert leaks_in(image_id, {"TOKEN": f"tok-{uuid.uuid4().hex}", "KEY": "-----BEGIN KEY-----\nabc\n"}) == []
