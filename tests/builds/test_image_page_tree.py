"""The layer tree shows one chip per image, and a name the user gave without a tag (`hello`) leaves the older
image when a new build takes it, as `hello:1` does: no two identical chips for two images."""

from __future__ import annotations

import hashlib

import pytest

from builds import access
from builds.constants import ImageOrigin
from builds.models import Image
from builds.services import images
from tests.builds.test_images_fixtures import BASE_DIFF


@pytest.fixture
def engine_images(monkeypatch, owner):
    """What a fake engine says of images: `details[id]`, each on the same base layer."""
    details: dict[str, dict] = {}

    def add(name: str, tags: list[str]) -> str:
        image_id = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
        for other in details.values():
            other["RepoTags"] = [tag for tag in other["RepoTags"]
                                 if tag not in {access.engine_name(owner, t) for t in tags}]
        details[image_id] = {"Id": image_id, "RepoTags": [access.engine_name(owner, tag) for tag in tags],
                             "RootFS": {"Layers": [BASE_DIFF]}, "Config": {"Cmd": [name]}}
        return image_id

    monkeypatch.setattr(images, "inspect_image", lambda engine, reference: details[reference])
    monkeypatch.setattr(images, "image_history",
                        lambda engine, reference: [{"CreatedBy": "/bin/sh -c #(nop) ADD file:base in /", "Size": 10}])
    return add


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["hello", "hello:1"])
def test_a_name_moved_to_a_new_image_leaves_the_old_one(engine_images, owner, owner_client, name):
    first = images.record_image(owner, None, engine_images("first", [name]), ImageOrigin.BUILT, names=[name])
    # A second build with only another CMD: the same layers, a new image that takes the name.
    second = images.record_image(owner, None, engine_images("second", [name]), ImageOrigin.BUILT, names=[name])

    first.refresh_from_db()
    assert first.tags == [] and second.tags == [name]
    body = owner_client.get("/images/tree/").content.decode()
    assert body.count(f">{name}</a>") == 1
    # The old image keeps a chip of its own, by its id.
    assert f">{first.image_id[7:19]}</a>" in body


@pytest.mark.django_db
def test_each_image_has_one_chip_with_its_names_in_the_title(engine_images, owner, owner_client):
    image = images.record_image(owner, None, engine_images("named", ["web:1", "web:latest"]), ImageOrigin.BUILT,
                                names=["web:1", "web:latest"])

    body = owner_client.get("/images/tree/").content.decode()

    assert Image.objects.for_user(owner).count() == 1
    assert body.count(f'href="/images/{image.pk}/"') == 1
    assert f'title="{image.image_id}: web:1, web:latest">web:1</a>' in body
