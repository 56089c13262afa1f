"""The image page's wasted-space figures: an efficiency that never reads 100 % while bytes are wasted, and the
files that waste them, named (builds/services/analysis.py efficiency_text and wasted_files)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from builds.models import Image, ImageAnalysis, Layer
from builds.services.analysis import efficiency_text, wasted_files
from console.constants import JobStatus
from tests.builds.test_images_fixtures import make_image


def test_the_efficiency_has_the_digits_that_keep_it_below_100_while_bytes_are_wasted():
    assert efficiency_text(1 - 204 / 4_000_000, 204) == "99.99"
    assert efficiency_text(1 - 204 / 40_000_000, 204) == "99.999"
    assert efficiency_text(0.5, 10) == "50.0"
    assert efficiency_text(0.9996, 4) == "99.96"
    assert efficiency_text(1 - 1e-9, 1) == ">99.9999"
    assert efficiency_text(1.0, 0) == "100"
    assert efficiency_text(None, None) == ""


def change(path: str, kind: str, size: int) -> dict:
    return {"path": path, "change": kind, "type": "file", "size": size}


def test_the_wasted_files_are_the_versions_a_later_layer_overwrites_or_removes():
    layers = [
        Layer(index=0, files=[change("etc/a.conf", "added", 100), change("bin/sh", "added", 5000)]),
        Layer(index=1, files=None, empty_layer=True),
        Layer(index=2, files=[change("etc/a.conf", "modified", 120), change("tmp/big.tar", "added", 9000)]),
        Layer(index=3, files=[change("tmp/big.tar", "removed", 9000)]),
        Layer(index=4, files=[change("etc/a.conf", "modified", 130)]),
    ]

    assert wasted_files(layers) == [
        {"path": "tmp/big.tar", "bytes": 9000, "added_in": 2, "hidden_in": 3},
        {"path": "etc/a.conf", "bytes": 120, "added_in": 2, "hidden_in": 4},
        {"path": "etc/a.conf", "bytes": 100, "added_in": 0, "hidden_in": 2},
    ]


def test_nothing_is_wasted_without_overwrites():
    assert wasted_files([Layer(index=0, files=[change("a", "added", 1)]), Layer(index=1, files=[])]) == []


def analysed_image(owner) -> Image:
    """An image whose RUN layer overwrites /app/config.json (204 bytes of the base's version are wasted)."""
    image = make_image(owner, "wasteful", ["app"])
    layers = {layer.index: layer for layer in image.layers.all()}
    layers[0].files = [change("app/config.json", "added", 204), change("bin/busybox", "added", 999_796)]
    layers[1].files = [change("app/config.json", "modified", 100)]
    Layer.objects.bulk_update([layers[0], layers[1]], ["files"])
    run = ImageAnalysis.objects.create(image=image, status=JobStatus.SUCCEEDED)
    Image.objects.filter(pk=image.pk).update(analysis=run, files_size=999_896, wasted_bytes=204,
                                             efficiency=999_896 / 1_000_100)
    return image


@pytest.mark.django_db
def test_the_page_shows_consistent_figures_and_names_the_wasted_files(owner_client, owner):
    image = analysed_image(owner)

    body = owner_client.get(f"/images/{image.pk}/").content.decode()

    assert '<strong id="wasted-bytes">204\xa0bytes</strong> wasted, efficiency' in body
    assert '<strong id="efficiency">99.98 %</strong>' in body and "100.0 %" not in body
    assert 'id="wasted-files"' in body and "<code>/app/config.json</code>" in body
    table = body[body.index('id="wasted-files-table"'):]
    assert "204" in table and "bin/busybox" not in table
    # The rows explain every wasted byte: no "written twice within one layer" remainder.
    assert 'id="wasted-within-layers"' not in body


@pytest.mark.django_db
def test_bytes_no_row_explains_are_said_so(owner_client, owner):
    image = analysed_image(owner)
    Image.objects.filter(pk=image.pk).update(wasted_bytes=204 + 2048)

    body = owner_client.get(f"/images/{image.pk}/").content.decode()

    assert "<code>/app/config.json</code>" in body
    assert '<p class="help" id="wasted-within-layers">And 2.0\xa0KB of files written twice' in body


@pytest.mark.django_db
def test_an_image_that_wastes_nothing_has_no_waste_panel(owner_client, owner):
    image = analysed_image(owner)
    Image.objects.filter(pk=image.pk).update(wasted_bytes=0, efficiency=1.0)
    Layer.objects.filter(image=image, index=1).update(files=[change("app/other.json", "added", 1)])

    body = owner_client.get(f"/images/{image.pk}/").content.decode()

    assert '<strong id="efficiency">100 %</strong>' in body and 'id="wasted-files"' not in body


@pytest.mark.django_db
def test_the_waste_panel_costs_no_query_per_layer(owner_client, owner):
    image = analysed_image(owner)
    with CaptureQueriesContext(connection) as few:
        owner_client.get(f"/images/{image.pk}/")
    more = make_image(owner, "wasteful-deeper", ["app", "b", "c", "d", "e"])
    Layer.objects.filter(image=more).update(files=[change("app/config.json", "added", 10)])
    Image.objects.filter(pk=more.pk).update(analysis=ImageAnalysis.objects.create(image=more, status="succeeded"),
                                            files_size=10, wasted_bytes=50, efficiency=0.5)
    with CaptureQueriesContext(connection) as many:
        body = owner_client.get(f"/images/{more.pk}/").content.decode()

    assert "<code>/app/config.json</code>" in body
    assert len(many) == len(few)
