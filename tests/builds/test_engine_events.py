"""Image records follow the engine's own events, on the real engine: an operator moving a name in a user's
namespace, removing a name or removing the image with the docker CLI reaches the user's records at the next look
(builds.follow_engine_events), and nothing else changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache

from builds import access
from builds.constants import ImageOrigin
from builds.models import Image
from builds.services import engine_events
from builds.services.images import record_image
from console.engine import Engine
from tests.builds.build_helpers import remove_images
from tests.builds.test_images_engine import build, docker

pytestmark = [pytest.mark.engine, pytest.mark.django_db]
PREFIX = "console-test/events-"


@pytest.fixture
def two_images(tmp_path) -> Iterator[tuple[str, str]]:
    first = build(tmp_path / "first", "FROM busybox:1.35.0\nRUN echo first > /first\n", tag=f"{PREFIX}first:1")
    second = build(tmp_path / "second", "FROM busybox:1.35.0\nRUN echo second > /second\n",
                   tag=f"{PREFIX}second:1")
    yield first, second
    remove_images(second, first)


def named(owner, engine: Engine, image_id: str, name: str) -> Image:
    docker("tag", image_id, access.engine_name(owner, name))
    return record_image(owner, engine, image_id, ImageOrigin.BUILT, names=[name])


def tags_of(owner, image_id: str) -> list[str] | None:
    record = Image.objects.for_user(owner).filter(image_id=image_id).first()
    return None if record is None else record.tags


def test_the_records_follow_what_an_operator_does_on_the_engine(owner, outsider, two_images):
    first, second = two_images
    cache.clear()
    with Engine.for_builds() as engine:
        named(owner, engine, first, "evt:1")
        named(owner, engine, second, "other:1")
        theirs = named(outsider, engine, first, "evt:1")
    assert engine_events.follow_engine_events() == 0  # what the console did itself is already on record

    # The operator moves the user's name to the other image, by hand.
    docker("tag", second, access.engine_name(owner, "evt:1"))
    assert engine_events.follow_engine_events() >= 1  # the new holder; the old one may be cleared on the way
    assert tags_of(owner, first) == []
    assert tags_of(owner, second) == ["other:1", "evt:1"]
    assert tags_of(outsider, first) == theirs.tags == ["evt:1"]  # another namespace: untouched

    # ...removes one of its names...
    docker("rmi", access.engine_name(owner, "other:1"))
    assert engine_events.follow_engine_events() == 1
    assert tags_of(owner, second) == ["evt:1"]

    # ...and removes the first image altogether (both users' names on it go, then the image).
    docker("rmi", "-f", first)
    engine_events.follow_engine_events()
    assert tags_of(owner, first) is None
    assert tags_of(outsider, first) is None
    assert tags_of(owner, second) == ["evt:1"]
    assert engine_events.follow_engine_events() == 0  # a look that overlaps the last changes nothing


def test_a_name_outside_any_users_namespace_is_no_users(owner):
    assert access.owner_id_of_name("console-u12/app:1") == 12
    assert access.owner_id_of_name(f"console-u{owner.pk}/team/app:latest") == owner.pk
    for name in ("app:1", "console-u/app:1", "console-ux1/app:1", "console-u12", "other/console-u12/app:1", ""):
        assert access.owner_id_of_name(name) is None
