"""Images against the real engine: records and their layer files, the layer tree of images sharing layers, sync,
tag, and removal refused while a container uses the image.

Images are built with the docker CLI on the engine's classic builder; the analysis task is called directly, and
once through a real Celery worker after record_built_image. Everything built here is removed at the end, by id.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from builds import access, tasks
from builds.constants import LABEL_BUILD_ID, ImageOrigin
from builds.models import Build, Image
from builds.services import analysis
from builds.services.images import record_built_image, record_image
from console.engine import Engine
from console.engine.images import inspect_image
from tests.builds.build_helpers import remove_images
from tests.builds.test_layerfiles import DOCKERFILE, EXPECTED_CHANGES, EXPECTED_WASTED, plain
from tests.fixtures.worker import routed_to, running_worker, wait_for

pytestmark = pytest.mark.engine
URL = "/api/v1/images/"
PREFIX = "console-test/images-"


def docker(*args: str, check: bool = True) -> str:
    completed = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300, check=False)
    if check:
        assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


def build(context: Path, dockerfile: str, tag: str = "", labels: dict[str, str] | None = None,
          files: dict[str, str] | None = None) -> str:
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (context / name).write_text(text)
        # A fixed mtime, so that identical COPY layers are identical byte for byte.
        os.utime(context / name, (1_600_000_000, 1_600_000_000))
    args = ["build", "-q", "--rm", "--force-rm"]
    for key, value in (labels or {}).items():
        args += ["--label", f"{key}={value}"]
    if tag:
        args += ["-t", tag]
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    completed = subprocess.run(["docker", *args, str(context)], env=env, capture_output=True, text=True,
                               timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with Engine.for_builds(timeout=120) as connection:
        yield connection


@pytest.fixture(scope="module")
def layered(tmp_path_factory) -> Iterator[str]:
    """The image of test_layerfiles.py: its layers add, modify and delete files; the changes are known by hand."""
    image_id = build(tmp_path_factory.mktemp("layered"), DOCKERFILE, tag=f"{PREFIX}layered:1",
                     files={"same.txt": "same\n"})
    yield image_id
    remove_images(image_id)


@pytest.fixture(scope="module")
def family(tmp_path_factory) -> Iterator[dict[str, str]]:
    """parent FROM busybox; two children FROM parent; a cousin FROM busybox: image ids by name."""
    root = tmp_path_factory.mktemp("family")
    made: dict[str, str] = {}
    try:
        made["parent"] = build(root / "parent", "FROM busybox:1.35.0\nRUN echo parent > /parent\n",
                               tag=f"{PREFIX}parent:1")
        for child in ("left", "right"):
            made[child] = build(root / child, f"FROM {PREFIX}parent:1\nRUN echo {child} > /{child}\n",
                                tag=f"{PREFIX}{child}:1")
        made["cousin"] = build(root / "cousin", "FROM busybox:1.35.0\nRUN echo cousin > /cousin\n",
                               tag=f"{PREFIX}cousin:1")
        yield made
    finally:
        remove_images(*reversed(list(made.values())))


def analysed(owner, engine: Engine, reference: str) -> Image:
    image = record_image(owner, engine, reference, ImageOrigin.BUILT)
    assert analysis.request_analysis(image) is True
    tasks.analyse_image(image.pk)
    image.refresh_from_db()
    assert image.analysis_status == "succeeded", image.analysis_error
    return image


@pytest.mark.django_db
def test_per_layer_files_and_wasted_bytes_are_the_hand_computed_ones(owner_api, owner, engine, layered):
    image = record_image(owner, engine, layered, ImageOrigin.BUILT)
    assert owner_api.get(f"{URL}{image.pk}/layers/1/files/").status_code == 409

    response = owner_api.post(f"{URL}{image.pk}/analyse/")
    assert response.status_code == 202 and response.json()["analysis_status"] == "queued"
    tasks.analyse_image(image.pk)
    body = owner_api.get(f"{URL}{image.pk}/").json()

    assert body["analysis_status"] == "succeeded", body["analysis_error"]
    assert body["wasted_bytes"] == EXPECTED_WASTED
    assert body["efficiency"] == pytest.approx(1 - EXPECTED_WASTED / (body["files_size"] + EXPECTED_WASTED))
    with_files = [layer for layer in body["layers"] if not layer["empty_layer"]]
    # The analysis set the diff_ids, those the engine lists, on the entries that made them, even `RUN rm`
    # (no bytes, so the history alone could not tell it made a layer).
    assert [layer["diff_id"] for layer in with_files] == inspect_image(engine, layered)["RootFS"]["Layers"]
    assert [layer["created_by"] for layer in with_files][1:4] == [
        "/bin/sh -c mkdir /data && echo hello > /data/a.txt", '/bin/sh -c echo "hello, world" > /data/a.txt',
        "/bin/sh -c rm /data/a.txt"]
    for layer, expected in zip(with_files[1:], EXPECTED_CHANGES, strict=True):
        files = owner_api.get(f"{URL}{image.pk}/layers/{layer['index']}/files/")
        assert files.status_code == 200
        assert plain(files.json()["results"]) == expected, layer["created_by"]
    opaque = with_files[9]["index"]
    assert plain(owner_api.get(f"{URL}{image.pk}/layers/{opaque}/files/?path=/data/opq/").json()["results"]) == [
        {"path": "data/opq/x", "change": "removed", "type": "file", "size": 4},
        {"path": "data/opq/y", "change": "removed", "type": "file", "size": 5},
        {"path": "data/opq/z", "change": "added", "type": "file", "size": 3},
    ]
    empty = next(layer["index"] for layer in body["layers"] if layer["empty_layer"])
    assert owner_api.get(f"{URL}{image.pk}/layers/{empty}/files/").json()["results"] == []
    # Asked again once done: the result, at once, and no new run.
    again = owner_api.post(f"{URL}{image.pk}/analyse/")
    assert again.status_code == 200 and again.json()["wasted_bytes"] == EXPECTED_WASTED


@pytest.mark.django_db
def test_bad_layer_indexes_and_paths_are_400(owner_api, owner, engine, layered):
    image = analysed(owner, engine, layered)
    count = image.layers.count()

    for index in (str(count), "-1", "x", "99999999"):
        response = owner_api.get(f"{URL}{image.pk}/layers/{index}/files/")
        assert response.status_code == 400 and "has no layer" in response.json()["detail"]
    response = owner_api.get(f"{URL}{image.pk}/layers/1/files/?path=../etc")
    assert response.status_code == 400 and "'..'" in response.json()["path"][0]


@pytest.mark.django_db
def test_the_image_page_draws_bars_file_trees_and_wasted_bytes(owner_client, owner, engine, layered):
    image = analysed(owner, engine, layered)

    page = owner_client.get(f"/images/{image.pk}/").content.decode()

    assert f"({EXPECTED_WASTED} bytes)" in page
    assert page.count('<meter class="layer-bar"') == image.layers.count()
    assert 'value="100"' in page
    assert '<span class="badge change-removed" title="removed">' in page
    assert "<code>a.txt</code>" in page and "<summary>" in page
    assert "style=" not in page


@pytest.mark.django_db
def test_images_sharing_layers_hang_under_their_deepest_shared_layer(owner_api, owner_client, owner, engine,
                                                                    family):
    for name in ("parent", "left", "right", "cousin"):
        # Named by the console in the owner's own namespace, as a build's tags are.
        docker("tag", family[name], access.engine_name(owner, f"{PREFIX}{name}:1"))
        record_image(owner, engine, family[name], ImageOrigin.BUILT, names=[f"{PREFIX}{name}:1"])
    base = record_image(owner, engine, "busybox:1.35.0", ImageOrigin.PULLED)

    forest = owner_api.get(f"{URL}tree/").json()

    assert len(forest) == 1
    root = forest[0]
    assert [item["id"] for item in root["images"]] == [base.pk]
    assert len(root["layers"]) == 1
    by_image = {item["image_id"]: node for node in root["children"] for item in node["images"]}
    assert set(by_image) == {family["parent"], family["cousin"]}
    parent = by_image[family["parent"]]
    assert [layer["created_by"] for layer in parent["layers"]] == ["/bin/sh -c echo parent > /parent"]
    assert {node["images"][0]["image_id"] for node in parent["children"]} == {family["left"], family["right"]}
    assert all(node["children"] == [] and len(node["layers"]) == 1 for node in parent["children"])
    assert by_image[family["cousin"]]["children"] == []
    page = owner_client.get("/images/tree/")
    assert page.status_code == 200
    assert f"{PREFIX}left:1" in page.content.decode()


@pytest.mark.django_db
def test_sync_records_the_users_images_and_forgets_gone_ones(owner_api, owner, outsider, engine, family,
                                                             hello_source, tmp_path):
    # A build number no other test run uses: images other runs left on the engine carry small ones.
    mine = Build.objects.create(pk=900_000_000 + os.getpid() % 1_000_000, owner=owner,
                                repository=hello_source.repository, source=hello_source)
    labelled = build(tmp_path / "labelled", "FROM busybox:1.35.0\nRUN echo labelled > /l\n",
                     labels={LABEL_BUILD_ID: str(mine.pk)})
    # The build recorded it as its image: that, not the label alone, proves it is the owner's.
    Build.objects.filter(pk=mine.pk).update(image_id=labelled)
    # Forged: the owner's build number in a label, on an image no build of theirs made.
    forged = build(tmp_path / "forged", "FROM busybox:1.35.0\nRUN echo forged > /f\n",
                   labels={LABEL_BUILD_ID: str(mine.pk)})
    docker("tag", family["left"], access.engine_name(owner, "synced:1"))
    # The owner's registry namespace on the engine proves nothing: anyone may pull a public image under it.
    docker("tag", family["right"], f"{owner.username}/not-proof:1")
    gone = Image.objects.create(owner=owner, image_id="sha256:" + "0" * 64)
    theirs = Image.objects.create(owner=outsider, image_id="sha256:" + "1" * 64)
    try:
        response = owner_api.post(f"{URL}sync/")

        assert response.status_code == 200
        recorded = Image.objects.filter(pk__in=response.json()["recorded"])
        assert {image.image_id for image in recorded} == {labelled, family["left"]}
        assert response.json()["forgotten"] == 1
        assert not Image.objects.filter(pk=gone.pk).exists()
        assert Image.objects.filter(pk=theirs.pk).exists()
        assert recorded.get(image_id=labelled).build == mine
        assert recorded.get(image_id=family["left"]).origin == "synced"
        assert recorded.get(image_id=family["left"]).tags == ["synced:1"]
        assert not Image.objects.filter(owner=owner, image_id__in=[forged, family["right"]]).exists()
        # Nothing for someone whose builds and namespace these are not.
        owner_api.force_authenticate(outsider)
        assert owner_api.post(f"{URL}sync/").json()["recorded"] == []
    finally:
        docker("rmi", access.engine_name(owner, "synced:1"), check=False)
        docker("rmi", f"{owner.username}/not-proof:1", check=False)
        remove_images(labelled, forged)


@pytest.mark.django_db
def test_it_tags_an_image_and_refuses_bad_names(owner_api, owner, engine, family):
    image = record_image(owner, engine, family["cousin"], ImageOrigin.BUILT)
    try:
        response = owner_api.post(f"{URL}{image.pk}/tag/", {"repository": f"{PREFIX}tagged", "tag": "v1"},
                                  format="json")

        assert response.status_code == 200
        assert f"{PREFIX}tagged:v1" in response.json()["tags"]
        # On the engine the name is the owner's own.
        engine_name = access.engine_name(owner, f"{PREFIX}tagged:v1")
        assert docker("image", "inspect", "-f", "{{.Id}}", engine_name) == family["cousin"]
        assert docker("image", "inspect", "-f", "{{.Id}}", f"{PREFIX}tagged:v1", check=False) == ""
        for bad in ({"repository": "Not Valid"}, {"repository": "ok", "tag": "-bad"}, {"tag": "v1"}):
            refused = owner_api.post(f"{URL}{image.pk}/tag/", bad, format="json")
            assert refused.status_code == 400, bad
        image.refresh_from_db()
        assert image.tags == [f"{PREFIX}tagged:v1"]
    finally:
        docker("rmi", access.engine_name(owner, f"{PREFIX}tagged:v1"), check=False)


@pytest.mark.django_db
def test_tagging_an_image_the_engine_no_longer_has_is_a_conflict_on_both_faces(owner_api, owner_client, owner):
    gone = Image.objects.create(owner=owner, image_id="sha256:" + "d" * 64, tags=["gone:1"])
    response = owner_api.post(f"{URL}{gone.pk}/tag/", {"repository": f"{PREFIX}gone", "tag": "v1"}, format="json")
    assert response.status_code == 409
    assert response.json() == {"detail": "The build engine no longer has this image: sync to forget it."}
    page = owner_client.post(f"/images/{gone.pk}/tag/", {"repository": f"{PREFIX}gone", "tag": "v1"})
    assert page.status_code == 400 and b"no longer has this image" in page.content
    gone.refresh_from_db()
    assert gone.tags == ["gone:1"]


@pytest.mark.django_db
def test_removal_is_refused_while_a_container_uses_the_image(owner_api, owner, engine, tmp_path):
    image_id = build(tmp_path, "FROM busybox:1.35.0\nRUN echo doomed > /doomed\n")
    for name in ("doomed:1", "doomed:2"):
        docker("tag", image_id, access.engine_name(owner, name))
    image = record_image(owner, engine, image_id, ImageOrigin.BUILT, names=["doomed:1", "doomed:2"])
    container = docker("create", "--name", "console-test-images-user", image_id)
    try:
        refused = owner_api.delete(f"{URL}{image.pk}/")

        assert refused.status_code == 409
        assert "console-test-images-user" in refused.json()["detail"]
        assert Image.objects.filter(pk=image.pk).exists()
        assert docker("image", "inspect", "-f", "{{.Id}}", image_id) == image_id
    finally:
        docker("rm", "-f", container)
    try:
        assert owner_api.delete(f"{URL}{image.pk}/").status_code == 204
        assert not Image.objects.filter(pk=image.pk).exists()
        assert subprocess.run(["docker", "image", "inspect", image_id], capture_output=True).returncode != 0
    finally:
        remove_images(image_id)


@pytest.mark.django_db
def test_removing_an_image_another_account_keeps_forgets_only_ones_own_record(owner_api, owner, outsider, engine,
                                                                              family):
    docker("tag", family["right"], access.engine_name(owner, "mine:1"))
    image = record_image(owner, engine, family["right"], ImageOrigin.BUILT, names=["mine:1"])
    kept = record_image(outsider, engine, family["right"], ImageOrigin.BUILT)

    response = owner_api.delete(f"{URL}{image.pk}/")

    assert response.status_code == 204
    assert not Image.objects.filter(pk=image.pk).exists() and Image.objects.filter(pk=kept.pk).exists()
    # The owner's name is gone, the image stays for the other account.
    assert docker("image", "inspect", "-f", "{{.Id}}", access.engine_name(owner, "mine:1"), check=False) == ""
    assert docker("image", "inspect", "-f", "{{.Id}}", family["right"]) == family["right"]


@pytest.mark.django_db
def test_push_and_deploy_accept_an_image_record_id(owner, outsider, engine, family):
    from django.core.exceptions import ValidationError

    from fleet.services import resolve_image as fleet_resolve
    from registry.services import resolve_image as registry_resolve

    image = record_image(owner, engine, family["parent"], ImageOrigin.BUILT)

    assert registry_resolve(owner, str(image.pk)) == family["parent"]
    assert fleet_resolve(owner, str(image.pk), pulled=False) == (family["parent"], family["parent"])
    with pytest.raises(ValidationError):
        registry_resolve(outsider, str(image.pk))
    # The engine's own name of an image is nobody's name for it: only names the owner gave count.
    with pytest.raises(ValidationError):
        registry_resolve(owner, f"{PREFIX}parent:1")


@pytest.mark.django_db(transaction=True)
def test_a_recorded_build_is_analysed_by_a_worker(owner, engine, layered, hello_source, tmp_path):
    build_row = Build.objects.create(owner=owner, repository=hello_source.repository, source=hello_source)
    with running_worker(tmp_path, queues=("celery",), concurrency=1) as worker, routed_to(worker):
        image = record_built_image(build_row, engine, layered)

        def ended():
            image.refresh_from_db()
            return image.analysis_status in ("succeeded", "failed")

        wait_for(ended, timeout=60, message="the analysis")
    assert image.analysis_status == "succeeded", image.analysis_error
    assert image.wasted_bytes == EXPECTED_WASTED
    assert image.layers.exclude(files=None).count() == image.layers.count()
