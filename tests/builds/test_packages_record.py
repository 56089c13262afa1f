"""Recording an image's packages (builds/services/packages.py) without the engine: rows replaced at once, each on
its layer, the os-release stored, and the contract's signal sent after."""

from __future__ import annotations

import pytest

from builds.models import ImagePackage
from builds.packagedb import FoundPackage
from builds.services.packages import packages_of, record_packages
from builds.signals import packages_recorded
from tests.builds.test_images_fixtures import make_image


def found(name: str, version: str, layer: int | None, ecosystem: str = "deb") -> FoundPackage:
    return FoundPackage(ecosystem=ecosystem, name=name, version=version, purl=f"pkg:{ecosystem}/{name}@{version}",
                        path="var/lib/dpkg/status", layer=layer)


@pytest.mark.django_db
def test_recording_replaces_the_packages_puts_each_on_its_layer_and_sends_the_signal(owner):
    image = make_image(owner, "pkgs", ["one"])
    other = make_image(owner, "other", ["two"])
    record_packages(other, [found("kept", "1", 0)], {})
    record_packages(image, [found("old", "0.1", 0)], {})
    seen = []

    def receiver(sender, image, **kwargs):
        seen.append((image.pk, sorted(packages_of(image).values_list("name", flat=True))))

    packages_recorded.connect(receiver)
    try:
        count = record_packages(image, [found("libc6", "2.36-9", 0), found("zlib1g", "1:1.2.13", 1),
                                        found("requests", "2.31.0", None, "pypi")],
                                {"ID": "debian", "VERSION_ID": "12"})
    finally:
        packages_recorded.disconnect(receiver)

    assert count == 3
    assert seen == [(image.pk, ["libc6", "requests", "zlib1g"])]
    rows = {row.name: row for row in packages_of(image)}
    layers = [row for row in image.layers.order_by("index") if not row.empty_layer]
    assert (rows["libc6"].layer, rows["zlib1g"].layer, rows["requests"].layer) == (layers[0], layers[1], None)
    image.refresh_from_db()
    assert image.os_release == {"ID": "debian", "VERSION_ID": "12"} and image.packages_read is not None
    assert list(packages_of(other).values_list("name", flat=True)) == ["kept"]


@pytest.mark.django_db
def test_an_image_not_analysed_has_no_packages(owner):
    image = make_image(owner, "fresh", [])

    assert list(packages_of(image)) == [] and image.packages_read is None
    assert ImagePackage.objects.count() == 0


@pytest.mark.django_db
def test_packages_come_with_their_layer_but_not_its_file_list(owner, django_assert_num_queries):
    image = make_image(owner, "deferred", ["one"])
    record_packages(image, [found("libc6", "2.36-9", 0), found("zlib1g", "1:1.2.13", 1)], {})

    with django_assert_num_queries(1):
        rows = list(packages_of(image))
        assert [row.layer.index for row in rows] == [0, 1]
    # A distribution's base layer lists tens of thousands of files: reading them per package made an SBOM of 217
    # packages take 12 s and 2 GB (bench/sbom.py).
    assert all("files" in row.layer.get_deferred_fields() for row in rows)
