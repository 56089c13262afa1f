"""Pushing or deploying names an image on a shared engine: another user's image is refused whatever name, id or
id prefix reaches it; an image nobody's records claim (a base image) is fine."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from builds.models import Image
from console.engine import Engine
from fleet.services import resolve_image as fleet_resolve
from registry.services import resolve_image as registry_resolve


@pytest.fixture
def base_image_id():
    with Engine.for_builds() as engine:
        return engine.api.inspect_image("busybox:1.35.0")["Id"]


def test_another_users_image_is_refused_by_name_id_and_prefix(owner, outsider, base_image_id):
    Image.objects.create(owner=owner, image_id=base_image_id, tags=["busybox:1.35.0"])
    # Long enough to hold a letter: an all-digit reference is read as a record number.
    prefix = base_image_id.removeprefix("sha256:")[:12]
    for reference in ("busybox:1.35.0", base_image_id, prefix):
        with pytest.raises(ValidationError, match="belongs to another user"):
            registry_resolve(outsider, reference)
        with pytest.raises(ValidationError, match="belongs to another user"):
            fleet_resolve(outsider, reference, pulled=False)
    assert registry_resolve(owner, "busybox:1.35.0") == "busybox:1.35.0"
    assert fleet_resolve(owner, "busybox:1.35.0", pulled=False) == ("busybox:1.35.0", base_image_id)


def test_an_image_nobody_claims_is_fine(outsider, base_image_id):
    assert registry_resolve(outsider, "busybox:1.35.0") == "busybox:1.35.0"
    assert fleet_resolve(outsider, "busybox:1.35.0", pulled=False)[1] == base_image_id


def test_a_number_that_is_not_one_of_the_users_records_is_refused(owner, outsider, base_image_id):
    image = Image.objects.create(owner=owner, image_id=base_image_id)
    for user, number in ((outsider, str(image.pk)), (owner, "199")):
        with pytest.raises(ValidationError, match="You have no image record"):
            registry_resolve(user, number)
        with pytest.raises(ValidationError, match="You have no image record"):
            fleet_resolve(user, number, pulled=False)
    assert registry_resolve(owner, str(image.pk)) == base_image_id
