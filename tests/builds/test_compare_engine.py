"""Comparing two images the real engine built FROM busybox: the second adds a file, removes one, makes one
executable, and changes an ENV and a label. Both are recorded and analysed by the real analysis job, then
compared through the API and the page: exactly those differences, over the layers they share. Images are named
console-test/compare-* and removed by id."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from builds import tasks
from builds.constants import ImageOrigin
from builds.services import analysis
from builds.services.images import record_image
from console.engine import Engine
from tests.builds.build_helpers import remove_images

pytestmark = [pytest.mark.engine, pytest.mark.django_db]
DOCKER = "/usr/bin/docker"
# The first RUN is the same in both (the second build takes it from the cache): a layer they share.
BASE = """FROM busybox:1.35.0
RUN mkdir /app && echo keep > /app/keep && echo old > /app/old
ENV MODE=prod GREETING=hello
LABEL stage=one team=compare
"""
HEAD = """FROM busybox:1.35.0
RUN mkdir /app && echo keep > /app/keep && echo old > /app/old
RUN rm /app/old && echo new-file > /app/new && chmod 755 /app/keep
ENV MODE=dev GREETING=hello
LABEL stage=two team=compare
"""


def build(context: Path, dockerfile: str, tag: str) -> str:
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(dockerfile)
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    done = subprocess.run([DOCKER, "build", "-q", "-t", tag, str(context)], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[dict[str, str]]:
    made: dict[str, str] = {}
    try:
        for name, dockerfile in (("base", BASE), ("head", HEAD)):
            made[name] = build(tmp_path_factory.mktemp(name), dockerfile, f"console-test/compare-{name}:1")
        yield made
    finally:
        remove_images(*made.values())


def recorded_and_analysed(owner, image_id: str):
    with Engine.for_builds(timeout=120) as engine:
        image = record_image(owner, engine, image_id, ImageOrigin.BUILT)
    assert analysis.request_analysis(image) is True
    tasks.analyse_image(image.pk)
    image.refresh_from_db()
    assert image.analysis_status == "succeeded", image.analysis_error
    return image


def test_two_builds_compare_to_exactly_what_the_second_changed(owner, owner_api, owner_client, built):
    base = recorded_and_analysed(owner, built["base"])
    head = recorded_and_analysed(owner, built["head"])

    response = owner_api.get(f"/api/v1/images/compare/?base={base.pk}&head={head.pk}")

    assert response.status_code == 200
    body = response.json()
    layers = body["layers"]
    # busybox's layer and the first RUN's; then the head's own RUN.
    assert len(layers["shared"]) == 2 and layers["removed"] == []
    assert [layer["instruction"] for layer in layers["added"]] == [
        "RUN rm /app/old && echo new-file > /app/new && chmod 755 /app/keep"]
    assert body["config"] == {
        "env": [{"name": "MODE", "base": "prod", "head": "dev"}],
        "cmd": None, "entrypoint": None, "user": None, "ports": None,
        "labels": [{"name": "stage", "base": "one", "head": "two"}],
    }
    files = body["files"]
    assert files["known"] is True
    assert files["added"] == [{"path": "app/new", "type": "file", "size": len("new-file\n"), "mode": 0o644,
                               "link": None}]
    assert files["removed"] == [{"path": "app/old", "type": "file", "size": len("old\n"), "mode": 0o644,
                                 "link": None}]
    assert files["changed"] == [{"path": "app/keep",
                                 "from": {"type": "file", "size": 5, "mode": 0o644, "link": None},
                                 "to": {"type": "file", "size": 5, "mode": 0o755, "link": None}}]
    assert files["counts"] == {"added": 1, "removed": 1, "changed": 1} and files["truncated"] is False
    assert files["bytes"] == len("new-file\n") - len("old\n")
    # busybox has no package database: once the analysis reads packages, none differ.
    packages = body["packages"]
    assert packages["known"] is (base.packages_read is not None and head.packages_read is not None)
    if packages["known"]:
        assert packages["added"] == packages["removed"] == packages["changed"] == []

    page = owner_client.get(f"/images/compare/?base={base.pk}&head={head.pk}").content.decode()
    assert "<code>/app/new</code>" in page and "<code>/app/old</code>" in page
    assert "mode <code>0644</code>" in page and "mode <code>0755</code>" in page
