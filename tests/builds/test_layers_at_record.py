"""The image record's layers are exact when it is made (builds/services/images.py `layer_makers`): settled by the
history, else by the classic builder's intermediate images, else by the config read from `docker save`; the
analysis adds files and refuses a record that disagrees with the image (builds/services/analysis.py). The engine
is a fake here; tests/builds/test_layers_exact_engine.py uses the real one."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from builds.layerfiles import LayerAnalysis
from builds.models import Image, ImageAnalysis, Layer
from builds.savedimage import SavedImageError, read_config
from builds.services import images
from builds.services.analysis import LayerMappingMismatch, store_analysis
from console.constants import JobStatus
from tests.builds.test_images_fixtures import diff, make_image
from tests.builds.test_layermap import BK, CASES

IMAGE_ID = "sha256:" + "c" * 64


class NoEngine:
    """An engine the code must not ask anything."""

    def __getattr__(self, name):
        raise AssertionError(f"the engine was asked ({name})")


def history_of(entries, ids=None) -> list[dict]:
    """The Engine API's history (newest first) of a case's entries (oldest first)."""
    ids = ids or ["<missing>"] * len(entries)
    return list(reversed([{"Id": ids[index], "CreatedBy": created_by, "Comment": comment, "Size": size,
                           "Created": 1_700_000_000 + index}
                          for index, (created_by, comment, size, _made, _count) in enumerate(entries)]))


def saved_tar(config: dict | None, image_id: str = IMAGE_ID, config_first: bool = True,
              oci: bool = False) -> list[bytes]:
    """A `docker save` stream of one image with two layers (and its config unless None), in 1 KiB chunks."""
    buffer = io.BytesIO()
    config_name = f"blobs/sha256/{image_id[7:]}" if oci else f"{image_id[7:]}.json"
    members = [("aaaa/layer.tar", b"\0" * 1024), ("bbbb/layer.tar", b"\0" * 1024)]
    if config is not None:
        config_member = (config_name, json.dumps(config).encode())
        members = [config_member, *members] if config_first else [*members, config_member]
    members.append(("manifest.json", json.dumps([{"Config": config_name, "Layers": ["aaaa/layer.tar"]}]).encode()))
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    return [data[offset:offset + 1024] for offset in range(0, len(data), 1024)]


class Chunks:
    """Chunks that count how many were read and whether they were closed."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks, self.read, self.closed = chunks, 0, False

    def __iter__(self):
        for chunk in self.chunks:
            self.read += 1
            yield chunk

    def close(self) -> None:
        self.closed = True


# -- reading the config from the save stream ----------------------------------------------------------------


def test_the_config_is_read_up_to_its_member_and_the_stream_closed():
    chunks = Chunks(saved_tar({"history": [{"created_by": "x"}]}))
    assert read_config(chunks, IMAGE_ID) == {"history": [{"created_by": "x"}]}
    assert chunks.closed and chunks.read < len(chunks.chunks)


@pytest.mark.parametrize("oci", [False, True])
def test_the_config_is_found_after_the_layers_and_in_an_oci_layout(oci):
    chunks = Chunks(saved_tar({"rootfs": {}}, config_first=False, oci=oci))
    assert read_config(chunks, IMAGE_ID) == {"rootfs": {}}
    assert chunks.closed


def test_a_config_named_only_by_the_manifest_is_found_there():
    # An engine whose image id is not its config's digest (the containerd store): manifest.json names it.
    chunks = saved_tar({"os": "linux"}, image_id="sha256:" + "d" * 64, config_first=True, oci=True)
    assert read_config(chunks, IMAGE_ID) == {"os": "linux"}


def test_an_archive_without_the_config_or_truncated_is_refused():
    with pytest.raises(SavedImageError, match="no config"):
        read_config(saved_tar(None), IMAGE_ID)
    with pytest.raises(SavedImageError, match="truncated|no config"):
        read_config(saved_tar({}, config_first=False)[:2], IMAGE_ID)


# -- which entry made which layer, when the image is recorded ---------------------------------------------


def test_a_history_that_settles_itself_asks_the_engine_nothing(db):
    _builder, layers, entries = CASES["hello-buildkit"]
    diff_ids = [diff(str(n)) for n in range(layers)]
    made = images.layer_makers(NoEngine(), IMAGE_ID, history_of(entries), diff_ids)
    assert made == [entry[3] for entry in entries]
    rows = images.layers_from_history(history_of(entries), diff_ids, made)
    assert [row["diff_id"] for row in rows if not row["empty_layer"]] == diff_ids
    mkdir = next(row for row in rows if "mkdir" in row["created_by"])
    assert (mkdir["diff_id"], mkdir["size"]) == (diff_ids[1], 0)
    assert next(row for row in rows if row["created_by"].startswith("LABEL"))["diff_id"] == ""


def test_a_classic_build_is_settled_by_the_images_of_its_open_steps(db, monkeypatch):
    _builder, layers, entries = CASES["hello-classic"]
    diff_ids = [diff(str(n)) for n in range(layers)]
    ids = [f"sha256:{index:064x}" for index in range(len(entries))]
    asked = []

    def inspect(engine, ref):
        asked.append(ids.index(ref))
        return {"RootFS": {"Layers": diff_ids[:entries[ids.index(ref)][4]]}}

    monkeypatch.setattr(images, "inspect_image", inspect)
    monkeypatch.setattr(images, "export_image", lambda *args: pytest.fail("the config was read"))
    made = images.layer_makers(object(), ids[-1], history_of(entries, ids), diff_ids)
    assert made == [entry[3] for entry in entries]
    # Only the open entries (RUN mkdir, WORKDIR) and the one before each.
    assert sorted(asked) == [2, 3, 4]


def test_an_image_the_history_leaves_open_is_settled_by_its_config(db, monkeypatch):
    # BuildKit FROM a classic image with `RUN true` and `RUN mkdir`: no intermediate images to ask.
    entries = [("", "Imported from -", 100, True, None), ("/bin/sh -c true", "", 0, False, None),
               ("/bin/sh -c mkdir /x", "", 0, True, None), ("RUN /bin/sh -c mkdir /y # buildkit", BK, 0, True, None)]
    config = {"history": [{} if entry[3] else {"empty_layer": True} for entry in entries]}
    monkeypatch.setattr(images, "inspect_image", lambda *args: pytest.fail("no image to inspect"))
    monkeypatch.setattr(images, "export_image", lambda engine, ref: Chunks(saved_tar(config)))
    made = images.layer_makers(object(), IMAGE_ID, history_of(entries), [diff("a"), diff("b"), diff("c")])
    assert made == [True, False, True, True]


def test_an_analysed_record_of_the_same_image_settles_it_without_the_engine(owner, monkeypatch):
    entries = [("", "Imported from -", 100, True, None), ("/bin/sh -c true", "", 0, False, None),
               ("/bin/sh -c mkdir /x", "", 0, True, None)]
    image = Image.objects.create(owner=owner, image_id=IMAGE_ID)
    Layer.objects.bulk_create([Layer(image=image, index=index, empty_layer=not entry[3], diff_id="")
                               for index, entry in enumerate(entries)])
    run = ImageAnalysis.objects.create(image=image, status=JobStatus.SUCCEEDED)
    Image.objects.filter(pk=image.pk).update(analysis=run)
    made = images.layer_makers(NoEngine(), IMAGE_ID, history_of(entries), [diff("a"), diff("b")])
    assert made == [True, False, True]


def test_a_config_whose_history_does_not_account_for_the_layers_records_the_layers_alone(db, monkeypatch):
    entries = [("/bin/sh -c mkdir /x", "", 0, True, None), ("/bin/sh -c true", "", 0, True, None)]
    monkeypatch.setattr(images, "export_image", lambda engine, ref: Chunks(saved_tar({"history": [{}]})))
    made = images.layer_makers(object(), IMAGE_ID, history_of(entries), [diff("a")])
    assert made is None
    rows = images.layers_from_history(history_of(entries), [diff("a")], made)
    assert [(row["diff_id"], row["created_by"], row["empty_layer"]) for row in rows] == [(diff("a"), "", False)]


# -- the analysis adds files and never moves a layer -------------------------------------------------------


def analysed(*names: str) -> list[LayerAnalysis]:
    return [LayerAnalysis(diff(name) if name != "base" else "sha256:" + "b" * 64, f"{name}/layer.tar", 1024, 1,
                          [{"path": name, "change": "added", "type": "file", "size": 1}]) for name in names]


def test_the_analysis_gives_the_recorded_layers_their_files(owner):
    image = make_image(owner, "agree", ["one", "two"])
    store_analysis(image, analysed("base", "one", "two"), 3, 0, 1.0, [False, False, True, False, True])
    stored = list(image.layers.order_by("index"))
    assert [row.files[0]["path"] if row.files else None for row in stored] == ["base", "one", None, "two", None]
    assert [row.diff_id for row in stored] == ["sha256:" + "b" * 64, diff("one"), "", diff("two"), ""]


@pytest.mark.parametrize(("layers", "flags", "words"), [
    (("base", "one", "two"), [False, True, False, False, True], "history entry 1 is recorded with a layer"),
    (("base", "two", "one"), None, "layer 1 is"),
    (("base", "one"), None, "3 layers recorded, 2 in the archive"),
])
def test_an_analysis_that_disagrees_with_the_record_stores_nothing_and_says_so(owner, caplog, layers, flags, words):
    image = make_image(owner, "disagree", ["one", "two"])
    before = list(image.layers.order_by("index").values_list("diff_id", "empty_layer", "files"))
    with pytest.raises(LayerMappingMismatch, match=words):
        store_analysis(image, analysed(*layers), 3, 0, 1.0, flags)
    assert list(image.layers.order_by("index").values_list("diff_id", "empty_layer", "files")) == before
    assert words in caplog.text
    assert Image.objects.get(pk=image.pk).files_size is None


def test_an_image_the_history_could_not_map_keeps_its_layers_alone(owner):
    image = Image.objects.create(owner=owner, image_id=IMAGE_ID)
    Layer.objects.bulk_create([Layer(image=image, index=0, diff_id=diff("a")), Layer(image=image, index=1,
                                                                                      diff_id=diff("b"))])
    # The config's history does not account for the two layers (one entry): the diff_ids alone are checked.
    store_analysis(image, analysed("a", "b"), 2, 0, 1.0, [False])
    assert [row.files[0]["path"] for row in image.layers.order_by("index")] == ["a", "b"]
