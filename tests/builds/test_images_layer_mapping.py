"""A RUN that creates folders and a WORKDIR that creates none are both size 0 in the history: the record tells them
apart when it is made (the classic builder's intermediate images give the layer count through each step), and the
analysis only adds their files (tests/builds/test_layers_exact_engine.py does the same through builds)."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from builds.constants import ImageOrigin
from builds.models import Image
from builds.runner import run_analysis
from builds.services.analysis import request_analysis
from builds.services.images import record_image
from console.engine import Engine

# Needs the real engine (left out of `make test-fast`).
pytestmark = pytest.mark.engine

DOCKERFILE = "FROM busybox:1.35.0\nRUN mkdir -p /app/www/cgi-bin\nWORKDIR /app\nENV A=1\n"


@pytest.fixture
def image_ref(tmp_path):
    tag = f"console-test/mapping:{uuid.uuid4().hex[:8]}"
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    subprocess.run(["docker", "build", "-q", "-t", tag, str(tmp_path)], check=True, capture_output=True,
                   env={**os.environ, "DOCKER_BUILDKIT": "0"})
    image_id = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", tag], capture_output=True, text=True,
                              check=True).stdout.strip()
    yield tag
    subprocess.run(["docker", "rmi", "-f", image_id], capture_output=True)


def test_the_run_that_made_the_folders_gets_them(owner, image_ref, django_capture_on_commit_callbacks):
    with Engine.for_builds() as engine:
        image = record_image(owner, engine, image_ref, ImageOrigin.BUILT)
    recorded = list(image.layers.order_by("index").values_list("empty_layer", "diff_id"))
    assert [empty for empty, _diff_id in recorded] == [False, False, True, True]
    with django_capture_on_commit_callbacks(execute=False):
        assert request_analysis(image) is True
    run_analysis(image.analysis_id)
    layers = {layer.created_by.split("#(nop)")[-1].split()[0] if "#(nop)" in layer.created_by else "RUN": layer
              for layer in Image.objects.get(pk=image.pk).layers.all()}
    made = {change["path"] for change in layers["RUN"].files}
    assert {"app", "app/www", "app/www/cgi-bin"} <= made
    assert layers["RUN"].empty_layer is False
    assert layers["ENV"].empty_layer is True and layers["ENV"].files == []
    assert not layers["WORKDIR"].files
    after = Image.objects.get(pk=image.pk).layers.order_by("index").values_list("empty_layer", "diff_id")
    assert list(after) == recorded
