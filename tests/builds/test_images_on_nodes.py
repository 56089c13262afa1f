"""On a build farm an image lives on the engine of the node that built it: pushes, tags and removals use that one."""

from __future__ import annotations

import pytest

from builds.access import engine_holding, engine_of
from builds.models import Image
from console.engine import EngineUnavailable
from registry.services import resolve_image
from tests.builds.test_nodes import make_node


def test_an_image_built_on_a_node_is_looked_for_on_that_nodes_engine(owner, settings):
    node = make_node("n1", engine_url="tcp://127.0.0.1:9")
    image = Image.objects.create(owner=owner, image_id="sha256:" + "a" * 64, node=node)
    assert engine_of(image).url == "tcp://127.0.0.1:9"
    assert engine_holding(owner, image.image_id).url == "tcp://127.0.0.1:9"
    # The push is checked against the node's engine (which does not answer here), not the web machine's.
    with pytest.raises(EngineUnavailable, match="tcp://127.0.0.1:9"):
        resolve_image(owner, str(image.pk))


def test_an_image_without_a_node_is_on_the_build_engine(owner, outsider, settings):
    image = Image.objects.create(owner=owner, image_id="sha256:" + "b" * 64)
    settings.DOCKER_HOST = "tcp://127.0.0.1:9"
    assert engine_of(image).url == "tcp://127.0.0.1:9"
    # Another user's record says nothing about where an engine reference lives.
    assert engine_holding(outsider, image.image_id).url == "tcp://127.0.0.1:9"
