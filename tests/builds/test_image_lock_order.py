"""Every writer of an image's layers takes the image's row first (builds/services/analysis.py `lock_image`), in the
order record_image does (update_or_create locks the image, then the layers are replaced). CI once deadlocked: a
tag given while the image's analysis stored its files (the analysis held the layers and waited for the image;
record_image held the image and waited for the layers). On PostgreSQL, which locks rows (SQLite locks the file)."""

from __future__ import annotations

import threading

import pytest
from django.db import DatabaseError, connection, transaction

from builds.models import Image, ImagePackage, Layer
from builds.packagedb import FoundPackage
from builds.services.analysis import LayerMappingMismatch, store_analysis
from builds.services.packages import record_packages
from tests.builds.test_images_fixtures import make_image
from tests.builds.test_layers_at_record import analysed

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def while_the_image_is_locked(image: Image, write) -> tuple[bool, list[BaseException]]:
    """Hold the image's row as record_image does, run `write` in another connection, and say whether the layers and
    packages could still be locked at once while `write` waited (not if it took them before the image: record_image
    deletes both)."""
    errors: list[BaseException] = []
    started = threading.Event()

    def writer():
        try:
            started.set()
            write()
        except BaseException as error:  # noqa: BLE001 (reported to the test)
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    with transaction.atomic():
        list(Image.objects.select_for_update().filter(pk=image.pk))
        thread.start()
        started.wait(5)
        thread.join(1.5)  # long enough for the writer to reach its first lock
        assert thread.is_alive(), "the writer did not wait for the image's row"
        try:
            with transaction.atomic():
                list(Layer.objects.select_for_update(nowait=True).filter(image=image))
                list(ImagePackage.objects.select_for_update(nowait=True).filter(image=image))
            layers_free = True
        except DatabaseError:
            layers_free = False
    thread.join(10)
    assert not thread.is_alive()
    return layers_free, errors


def test_storing_the_analysis_waits_for_the_image_before_it_touches_a_layer(owner):
    image = make_image(owner, "locked", ["one", "two"])
    layers_free, errors = while_the_image_is_locked(
        image, lambda: store_analysis(image, analysed("base", "one", "two"), 3, 0, 1.0,
                                      [False, False, True, False, True]))
    assert layers_free
    assert errors == []
    assert [row.files[0]["path"] for row in image.layers.order_by("index") if row.files] == ["base", "one", "two"]


def test_recording_packages_waits_for_the_image_too(owner):
    image = make_image(owner, "packages", ["one"])
    found = FoundPackage("deb", "busybox", "1:1.35.0-4", "pkg:deb/debian/busybox@1:1.35.0-4", "var/lib/dpkg/status",
                         layer=0)
    record_packages(image, [found], {})  # the packages of an earlier analysis, which the next one deletes
    layers_free, errors = while_the_image_is_locked(image, lambda: record_packages(image, [found],
                                                                                   {"ID": "debian"}))
    assert layers_free
    assert errors == []
    assert Image.objects.get(pk=image.pk).os_release == {"ID": "debian"}
    assert ImagePackage.objects.get(image=image).name == "busybox"


def test_an_analysis_of_layers_replaced_meanwhile_stores_nothing(owner, monkeypatch):
    from builds.services import analysis

    image = make_image(owner, "replaced", ["one", "two"])
    checked = analysis.mapping_disagreement

    def record_again_after_the_check(rows, analysed_layers, empty_layers):
        """record_image runs between the analysis's read of the rows and its lock: it replaces the layers."""
        answer = checked(rows, analysed_layers, empty_layers)
        last = rows[-1]
        Layer.objects.filter(pk=last.pk).delete()
        Layer.objects.create(image=image, index=last.index, diff_id=last.diff_id, empty_layer=last.empty_layer)
        return answer

    monkeypatch.setattr(analysis, "mapping_disagreement", record_again_after_the_check)
    with pytest.raises(LayerMappingMismatch, match="recorded again"):
        store_analysis(image, analysed("base", "one", "two"), 3, 0, 1.0, [False, False, True, False, True])
    assert not any(row.files for row in image.layers.all())
    assert Image.objects.get(pk=image.pk).files_size is None


def test_an_analysis_asked_for_while_the_record_is_forgotten_waits_and_queues_nothing(owner):
    from builds.models import ImageAnalysis
    from builds.services.analysis import request_analysis
    from builds.services.images import forget_records

    image = make_image(owner, "forgotten", ["one"])
    answers: list[object] = []

    def ask():
        try:
            answers.append(request_analysis(image))
        except BaseException as error:  # noqa: BLE001 (reported to the test)
            answers.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=ask)
    with transaction.atomic():
        assert forget_records(Image.objects.filter(pk=image.pk)) == 1
        thread.start()
        thread.join(1.5)
        assert thread.is_alive(), "the request did not wait for the forgotten record"
    thread.join(10)
    assert answers == [False]
    assert not ImageAnalysis.objects.filter(image_id=image.pk).exists()
