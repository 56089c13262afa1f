"""Pushing or deploying names an image on a shared engine: only the user's own images (by record number, tag,
digest, id or id prefix) and shared base images are theirs to use; another user's image and an image nobody's
records claim are refused whatever name, id or id prefix reaches it (builds/access.py)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from builds import access
from builds.models import Image, SharedImage
from console.engine import Engine
from fleet.services import resolve_image as fleet_resolve
from registry.services import resolve_image as registry_resolve

REFUSED = "You have no image"


@pytest.fixture
def base_image_id():
    with Engine.for_builds() as engine:
        return engine.api.inspect_image("busybox:1.35.0")["Id"]


def test_another_users_image_is_refused_by_name_id_and_prefix(owner, outsider, base_image_id):
    Image.objects.create(owner=owner, image_id=base_image_id, tags=["secret-app:1"])
    # Long enough to hold a letter: an all-digit reference is read as a record number.
    prefix = base_image_id.removeprefix("sha256:")[:12]
    for reference in ("secret-app:1", base_image_id, prefix):
        with pytest.raises(ValidationError, match=REFUSED):
            registry_resolve(outsider, reference)
        with pytest.raises(ValidationError, match=REFUSED):
            fleet_resolve(outsider, reference, pulled=False)
    assert registry_resolve(owner, "secret-app:1") == base_image_id
    assert fleet_resolve(owner, "secret-app:1", pulled=False) == ("secret-app:1", base_image_id)
    assert registry_resolve(owner, prefix) == base_image_id


def test_the_shared_base_image_is_anyones_by_its_plain_name(outsider, base_image_id):
    assert registry_resolve(outsider, "busybox:1.35.0") == base_image_id
    assert fleet_resolve(outsider, "docker.io/library/busybox:1.35.0", pulled=False)[1] == base_image_id


def test_an_image_nobody_claims_is_refused_until_an_operator_shares_it(outsider, base_image_id):
    with Engine.for_builds() as engine:
        engine.tag_image(base_image_id, "console-test/unclaimed", "1")
    try:
        with pytest.raises(ValidationError, match=REFUSED):
            registry_resolve(outsider, "console-test/unclaimed:1")
        SharedImage.objects.create(reference="console-test/unclaimed:1")
        assert registry_resolve(outsider, "console-test/unclaimed:1") == base_image_id
    finally:
        with Engine.for_builds() as engine:
            engine.api.remove_image("console-test/unclaimed:1", noprune=True)


def test_a_number_that_is_not_one_of_the_users_records_is_refused(owner, outsider, base_image_id):
    image = Image.objects.create(owner=owner, image_id=base_image_id)
    # The owner's missing number is past their record's: a fixed one may be the record itself in a later run.
    for user, number in ((outsider, str(image.pk)), (owner, str(image.pk + 1000))):
        with pytest.raises(ValidationError, match="You have no image record"):
            registry_resolve(user, number)
        with pytest.raises(ValidationError, match="You have no image record"):
            fleet_resolve(user, number, pulled=False)
    assert registry_resolve(owner, str(image.pk)) == base_image_id


def test_names_live_in_each_users_own_namespace_on_the_engine(owner, outsider):
    assert access.engine_name(owner, "hello:1.0") == f"console-u{owner.pk}/hello:1.0"
    assert access.engine_name(outsider, "hello") == f"console-u{outsider.pk}/hello:latest"
    assert access.engine_name(owner, "busybox:1.35.0") != "busybox:1.35.0"
    assert access.engine_name(owner, "127.0.0.1:5000/alice/x:1") == f"console-u{owner.pk}/127.0.0.1-5000/alice/x:1"


def test_a_short_prefix_or_a_digest_of_someone_else_reaches_nothing(owner, outsider):
    image = Image.objects.create(owner=owner, image_id="sha256:" + "ab" * 32, tags=["app:1"],
                                 digests=["127.0.0.1:5000/alice/app@sha256:" + "cd" * 32])
    for reference in ("abababab", "ab" * 6 + "x", "127.0.0.1:5000/alice/app@sha256:" + "cd" * 32, "app"):
        with pytest.raises(access.ImageAccessError):
            access.grant(outsider, reference)
    assert access.grant(owner, "127.0.0.1:5000/alice/app@sha256:" + "cd" * 32).record == image
    assert access.grant(owner, "app:1").image_id == image.image_id
