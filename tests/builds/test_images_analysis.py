"""The analysis service without the engine: storing a result, folder filters, the file tree (checking a result against
the recorded layers: tests/builds/test_layers_at_record.py)."""

from __future__ import annotations

import pytest

from builds.layerfiles import LayerAnalysis
from builds.models import Image, ImageAnalysis
from builds.services.analysis import (
    BadLayerPath,
    clean_folder,
    file_tree_html,
    layer_files,
    store_analysis,
)
from console import jobs
from console.constants import JobStatus
from tests.builds.test_images_fixtures import BASE_DIFF, diff, make_image


def layer(name: str, *changes: tuple[str, str, str, int]) -> LayerAnalysis:
    listed = [{"path": path, "change": what, "type": kind, "size": size} for path, what, kind, size in changes]
    return LayerAnalysis(diff(name), f"{name}/layer.tar", 1024, sum(c["size"] for c in listed), listed)


@pytest.mark.django_db
def test_storing_an_analysis_sets_files_and_the_image_figures(owner):
    image = make_image(owner, "stored", ["one"])
    analysed = [layer("base-for-test", ("bin", "added", "dir", 0), ("bin/sh", "added", "file", 10)),
                layer("one", ("bin/sh", "modified", "file", 12))]
    analysed[0].diff_id, analysed[1].diff_id = BASE_DIFF, diff("one")

    run = ImageAnalysis.objects.create(image=image, status=JobStatus.RUNNING)
    Image.objects.filter(pk=image.pk).update(analysis=run)

    store_analysis(image, analysed, total_size=12, wasted_bytes=10, efficiency=12 / 22)
    jobs.finish(run, JobStatus.SUCCEEDED)

    image.refresh_from_db()
    assert (image.analysis_status, image.files_size, image.wasted_bytes) == ("succeeded", 12, 10)
    stored = list(image.layers.order_by("index"))
    assert [row.files for row in stored] == [analysed[0].changes, analysed[1].changes, []]
    assert [row.empty_layer for row in stored] == [False, False, True]
    assert layer_files(image, stored[0], "bin") == [{"path": "bin/sh", "change": "added", "type": "file", "size": 10}]


@pytest.mark.parametrize(("given", "cleaned"), [("", ""), ("/", ""), ("/data/opq/", "data/opq"), ("a//b/./c", "a/b/c")])
def test_folder_filters_are_normalised(given, cleaned):
    assert clean_folder(given) == cleaned


@pytest.mark.parametrize("given", ["../etc", "a/../../b", "a\x00b", "x" * 5000])
def test_bad_folder_filters_are_refused(given):
    with pytest.raises(BadLayerPath):
        clean_folder(given)


def test_the_file_tree_nests_folders_marks_changes_and_escapes_names():
    html = file_tree_html([
        {"path": "data", "change": "modified", "type": "dir", "size": 0},
        {"path": "data/<b>.txt", "change": "added", "type": "file", "size": 7},
        {"path": "gone/x", "change": "removed", "type": "file", "size": 1},
    ])

    assert html.startswith('<ul class="filetree"><li><details><summary><span class="badge change-modified"')
    assert "<code>&lt;b&gt;.txt</code> <span class=\"muted\">7 B</span>" in html
    assert "<code>gone/</code>" in html and 'change-removed' in html
    assert "<b>" not in html


def test_the_file_tree_stops_at_its_limit():
    changes = [{"path": f"f{n}", "change": "added", "type": "file", "size": 1} for n in range(50)]

    assert file_tree_html(changes, limit=10).count("<li>") == 10
