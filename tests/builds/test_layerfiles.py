"""Per-layer file changes of an image, read from the `docker save` stream.

Against the real engine: an image built FROM busybox:1.35.0 (classic builder, through the docker CLI) whose
layers add, modify and delete files and folders, make a folder opaque, grow a 1 MiB file to 2 MiB, and repeat
an identical layer (which the engine saves as a link to the first). The expected changes and byte counts are
written out by hand below. Without the engine: hand-made saved images for the corner cases and a large
generated one to show that memory stays flat.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import tracemalloc
from collections.abc import Iterator

import pytest

from builds.layerfiles import ImageAnalysis, LayerAnalysisError, analyse_saved_image
from console.engine import Engine, EngineError, EngineNotFound
from console.engine.images import export_image, image_history, inspect_image

MiB = 1024 * 1024

DOCKERFILE = """\
FROM busybox:1.35.0
RUN mkdir /data && echo hello > /data/a.txt
RUN echo "hello, world" > /data/a.txt
RUN rm /data/a.txt
RUN mkdir -p /data/tree/sub && echo 12345 > /data/tree/sub/f && echo 1234567 > /data/tree/g
RUN rm -rf /data/tree
RUN head -c 1048576 /dev/zero > /data/big
RUN head -c 2097152 /dev/zero > /data/big
RUN mkdir /data/opq && echo 123 > /data/opq/x && echo 4567 > /data/opq/y
RUN rm -rf /data/opq && mkdir /data/opq && echo 89 > /data/opq/z
COPY same.txt /same.txt
RUN rm /same.txt
COPY same.txt /same.txt
RUN ln -s /data/big /data/link
CMD ["sh"]
"""


def change(path: str, what: str, kind: str, size: int = 0) -> dict[str, object]:
    return {"path": path, "change": what, "type": kind, "size": size}


def plain(changes: list[dict[str, object]]) -> list[dict[str, object]]:
    """Changes without the permission bits and link targets (the tests of those say them)."""
    return [{key: value for key, value in item.items() if key not in ("mode", "link")} for item in changes]


DATA_MODIFIED = change("data", "modified", "dir")
# The changes of every layer after busybox's, worked out by hand from the Dockerfile above.
EXPECTED_CHANGES = [
    [change("data", "added", "dir"), change("data/a.txt", "added", "file", 6)],
    [DATA_MODIFIED, change("data/a.txt", "modified", "file", 13)],
    [DATA_MODIFIED, change("data/a.txt", "removed", "file", 13)],
    [DATA_MODIFIED, change("data/tree", "added", "dir"), change("data/tree/g", "added", "file", 8),
     change("data/tree/sub", "added", "dir"), change("data/tree/sub/f", "added", "file", 6)],
    [DATA_MODIFIED, change("data/tree", "removed", "dir"), change("data/tree/g", "removed", "file", 8),
     change("data/tree/sub", "removed", "dir"), change("data/tree/sub/f", "removed", "file", 6)],
    [DATA_MODIFIED, change("data/big", "added", "file", MiB)],
    [DATA_MODIFIED, change("data/big", "modified", "file", 2 * MiB)],
    [DATA_MODIFIED, change("data/opq", "added", "dir"), change("data/opq/x", "added", "file", 4),
     change("data/opq/y", "added", "file", 5)],
    # rm -rf then mkdir: overlay makes the folder opaque instead of whiting out each file.
    [DATA_MODIFIED, change("data/opq", "modified", "dir"), change("data/opq/x", "removed", "file", 4),
     change("data/opq/y", "removed", "file", 5), change("data/opq/z", "added", "file", 3)],
    [change("same.txt", "added", "file", 5)],
    [change("same.txt", "removed", "file", 5)],
    [change("same.txt", "added", "file", 5)],
    [DATA_MODIFIED, change("data/link", "added", "symlink")],
]
# a.txt's 6 then 13 bytes, tree's 6 + 8, big's first MiB, opq's 4 + 5, the first same.txt's 5.
EXPECTED_WASTED = 6 + 13 + (6 + 8) + MiB + (4 + 5) + 5
# Bytes of every file version the layers after busybox's hold.
EXPECTED_LAYER_BYTES = [6, 13, 0, 14, 0, MiB, 2 * MiB, 9, 3, 5, 0, 5, 0]
# What is left at the end besides busybox: the 2 MiB big, opq/z and same.txt.
EXPECTED_EXTRA_SIZE = 2 * MiB + 3 + 5


def docker_build(engine: Engine, context: str) -> str:
    """Build with the engine's classic builder through the docker CLI; returns the image id."""
    env = {**os.environ, "DOCKER_BUILDKIT": "0", "DOCKER_HOST": engine.url}
    completed = subprocess.run(
        ["docker", "build", "-q", "--rm", "--force-rm", "--label", "console-test=layerfiles", context],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip().splitlines()[-1]


def docker_rmi(engine: Engine, image_id: str) -> None:
    env = {**os.environ, "DOCKER_HOST": engine.url}
    subprocess.run(["docker", "rmi", image_id], env=env, capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with Engine.for_builds(timeout=120) as connection:
        yield connection


@pytest.fixture(scope="module")
def built(engine, tmp_path_factory) -> Iterator[tuple[str, ImageAnalysis]]:
    context = tmp_path_factory.mktemp("layers-context")
    (context / "Dockerfile").write_text(DOCKERFILE)
    same = context / "same.txt"
    same.write_text("same\n")
    # A fixed mtime, so that both COPY layers are byte for byte identical.
    os.utime(same, (1_600_000_000, 1_600_000_000))
    image_id = docker_build(engine, str(context))
    try:
        yield image_id, analyse_saved_image(export_image(engine, image_id))
    finally:
        docker_rmi(engine, image_id)


@pytest.mark.engine
def test_it_lists_the_changes_of_each_layer_in_order(built):
    _, analysis = built

    assert len(analysis.layers) == 1 + len(EXPECTED_CHANGES)
    for number, (layer, expected) in enumerate(zip(analysis.layers[1:], EXPECTED_CHANGES, strict=True), start=1):
        assert plain(layer.changes) == expected, f"layer {number}"
    assert [layer.size for layer in analysis.layers[1:]] == EXPECTED_LAYER_BYTES


@pytest.mark.engine
def test_the_base_layer_is_all_added(built):
    _, analysis = built
    base = plain(analysis.layers[0].changes)

    assert {item["change"] for item in base} == {"added"}
    assert change("bin/busybox", "added", "file", analysis.layers[0].size - sum(
        item["size"] for item in base if item["path"] != "bin/busybox")) in base
    assert change("bin/sh", "added", "symlink") in base or change("bin/sh", "added", "hardlink") in base


@pytest.mark.engine
def test_the_engine_saves_modes_and_link_targets_as_the_layers_made_them(built):
    _, analysis = built
    last = analysis.layers[-1].changes

    assert {"path": "data/link", "change": "added", "type": "symlink", "size": 0, "mode": 0o777,
            "link": "/data/big"} in last
    assert {"path": "data", "change": "modified", "type": "dir", "size": 0, "mode": 0o755} in last


@pytest.mark.engine
def test_it_counts_wasted_bytes_total_size_and_efficiency(built):
    _, analysis = built
    base_bytes = analysis.layers[0].size
    all_bytes = base_bytes + sum(EXPECTED_LAYER_BYTES)

    assert analysis.wasted_bytes == EXPECTED_WASTED
    assert analysis.total_size == base_bytes + EXPECTED_EXTRA_SIZE
    assert analysis.efficiency == pytest.approx((all_bytes - EXPECTED_WASTED) / all_bytes)
    assert analysis.total_size == all_bytes - analysis.wasted_bytes


@pytest.mark.engine
def test_diff_ids_are_the_engines(built, engine):
    image_id, analysis = built

    rootfs = inspect_image(engine, image_id)["RootFS"]["Layers"]

    assert [layer.diff_id for layer in analysis.layers] == rootfs
    # The second COPY made the same layer as the first: the engine saved it as a link, read all the same.
    assert analysis.layers[10].diff_id == analysis.layers[12].diff_id
    assert analysis.layers[10].archive_path != analysis.layers[12].archive_path


@pytest.mark.engine
def test_it_reads_the_image_history(built, engine):
    image_id, _ = built

    history = image_history(engine, image_id)

    assert history[0]["Id"] == image_id
    assert any("CMD [\"sh\"]" in step["CreatedBy"] for step in history)
    assert any("head -c 2097152" in step["CreatedBy"] for step in history)
    assert len([step for step in history if step["Size"] > 0]) >= 10


@pytest.mark.engine
def test_a_single_layer_image_wastes_nothing(engine):
    analysis = analyse_saved_image(export_image(engine, "busybox:1.35.0"))

    assert len(analysis.layers) == 1
    assert analysis.wasted_bytes == 0
    assert analysis.efficiency == 1.0
    assert analysis.total_size == analysis.layers[0].size > 1_000_000
    assert "busybox:1.35.0" in analysis.repo_tags


@pytest.mark.engine
def test_the_export_is_streamed_in_chunks(engine):
    sizes = [len(chunk) for chunk in export_image(engine, "busybox:1.35.0", chunk_size=64 * 1024)]

    assert len(sizes) > 10
    assert max(sizes) <= 64 * 1024
    assert sum(sizes) > 2_000_000


@pytest.mark.engine
def test_an_export_abandoned_early_is_closed_and_the_engine_still_answers(engine):
    stream = export_image(engine, "busybox:1.35.0", chunk_size=4096)
    first = next(stream)
    stream.close()

    assert len(first) == 4096
    assert sum(len(chunk) for chunk in export_image(engine, "busybox:1.35.0")) > 2_000_000


@pytest.mark.engine
def test_a_missing_image_is_not_found(engine):
    with pytest.raises(EngineNotFound):
        list(export_image(engine, "console-test/never-made:nope"))
    with pytest.raises(EngineNotFound):
        inspect_image(engine, "console-test/never-made:nope")
    with pytest.raises(EngineNotFound):
        image_history(engine, "console-test/never-made:nope")


# -- hand-made saved images -------------------------------------------------------------------------------


def layer_tar(*entries: tuple) -> bytes:
    """A layer tar from (path, kind[, content or link target]) entries; kind is file, dir, symlink or hardlink."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path, kind, *rest in entries:
            info = tarfile.TarInfo(path)
            data = None
            if kind == "file":
                data = rest[0] if rest else b""
                info.size = len(data)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, rest[0]
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, rest[0]
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def saved_image(layers: list[bytes], manifest_first: bool = False, config: bool = True,
                diff_ids: list[str] | None = None) -> bytes:
    """A `docker save` archive: layer folders named so that their name order is not the image's order."""
    names = [f"{'zyxwvutsrq'[index]}{index:063d}/layer.tar" for index in range(len(layers))]
    config_name = "c" * 64 + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["test/image:1"], "Layers": names}]).encode()
    ids = diff_ids or [f"sha256:{hashlib.sha256(layer).hexdigest()}" for layer in layers]
    members = [(name, data) for name, data in sorted(zip(names, layers, strict=True))]
    if config:
        members.insert(0, (config_name, json.dumps({"rootfs": {"type": "layers", "diff_ids": ids}}).encode()))
    members.insert(0 if manifest_first else len(members), ("manifest.json", manifest))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def chunked(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


BASE = layer_tar(("etc", "dir"), ("etc/conf", "file", b"12345"), ("opt", "dir"), ("opt/app", "dir"),
                 ("opt/app/lib", "dir"), ("opt/app/lib/a.so", "file", b"a" * 100), ("opt/app/run", "file", b"r" * 10))


@pytest.mark.parametrize("manifest_first", [False, True])
def test_the_manifest_orders_the_layers_wherever_it_comes(manifest_first):
    top = layer_tar(("etc", "dir"), ("etc/conf", "file", b"1234567"))
    analysis = analyse_saved_image(chunked(saved_image([BASE, top], manifest_first=manifest_first)))

    assert [layer.size for layer in analysis.layers] == [115, 7]
    assert plain(analysis.layers[1].changes) == [change("etc", "modified", "dir"),
                                                 change("etc/conf", "modified", "file", 7)]
    assert analysis.wasted_bytes == 5
    assert analysis.total_size == 117
    assert analysis.efficiency == pytest.approx(117 / 122)
    assert analysis.repo_tags == ["test/image:1"]


def test_a_whiteout_removes_a_folder_and_everything_under_it():
    top = layer_tar(("opt", "dir"), ("opt/.wh.app", "file"))
    analysis = analyse_saved_image(chunked(saved_image([BASE, top])))

    assert plain(analysis.layers[1].changes) == [
        change("opt", "modified", "dir"),
        change("opt/app", "removed", "dir"),
        change("opt/app/lib", "removed", "dir"),
        change("opt/app/lib/a.so", "removed", "file", 100),
        change("opt/app/run", "removed", "file", 10),
    ]
    assert analysis.wasted_bytes == 110
    assert analysis.total_size == 5


def test_an_opaque_folder_hides_what_was_under_it_but_not_what_its_layer_brings():
    top = layer_tar(("opt/app", "dir"), ("opt/app/.wh..wh..opq", "file"), ("opt/app/lib", "dir"),
                    ("opt/app/lib/b.so", "file", b"b" * 7))
    analysis = analyse_saved_image(chunked(saved_image([BASE, top])))

    assert plain(analysis.layers[1].changes) == [
        change("opt/app", "modified", "dir"),
        change("opt/app/lib", "modified", "dir"),
        change("opt/app/lib/a.so", "removed", "file", 100),
        change("opt/app/lib/b.so", "added", "file", 7),
        change("opt/app/run", "removed", "file", 10),
    ]
    assert analysis.wasted_bytes == 110
    assert analysis.total_size == 5 + 7


def test_a_file_replacing_a_folder_hides_its_content():
    top = layer_tar(("opt/app", "file", b"now a file"))
    analysis = analyse_saved_image(chunked(saved_image([BASE, top])))

    assert plain(analysis.layers[1].changes) == [
        change("opt/app", "modified", "file", 10),
        change("opt/app/lib", "removed", "dir"),
        change("opt/app/lib/a.so", "removed", "file", 100),
        change("opt/app/run", "removed", "file", 10),
    ]
    assert analysis.total_size == 5 + 10


def test_removing_then_adding_again_is_an_addition_and_links_are_typed():
    removed = layer_tar(("etc/.wh.conf", "file"))
    again = layer_tar(
        ("etc/conf", "file", b"xy"), ("etc/link", "symlink", "conf"), ("etc/hard", "hardlink", "etc/conf")
    )
    analysis = analyse_saved_image(chunked(saved_image([BASE, removed, again])))

    assert plain(analysis.layers[1].changes) == [change("etc/conf", "removed", "file", 5)]
    assert plain(analysis.layers[2].changes) == [
        change("etc/conf", "added", "file", 2), change("etc/hard", "added", "hardlink"),
        change("etc/link", "added", "symlink"),
    ]


def test_added_and_modified_paths_keep_their_permission_bits_and_link_targets():
    info = tarfile.TarInfo("etc/run.sh")
    info.size, info.mode = 2, 0o4755
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(info, io.BytesIO(b"#!"))
    top = layer_tar(("etc/link", "symlink", "../opt/app/run"), ("etc/hard", "hardlink", "etc/conf"))
    analysis = analyse_saved_image(chunked(saved_image([BASE, buffer.getvalue(), top])))

    assert analysis.layers[1].changes == [
        {"path": "etc/run.sh", "change": "added", "type": "file", "size": 2, "mode": 0o4755}]
    assert analysis.layers[2].changes == [
        {"path": "etc/hard", "change": "added", "type": "hardlink", "size": 0, "mode": 0o644, "link": "etc/conf"},
        {"path": "etc/link", "change": "added", "type": "symlink", "size": 0, "mode": 0o644,
         "link": "../opt/app/run"},
    ]


def test_a_whiteout_of_something_never_there_changes_nothing():
    top = layer_tar(("etc/.wh.nothing", "file"))
    analysis = analyse_saved_image(chunked(saved_image([BASE, top])))

    assert plain(analysis.layers[1].changes) == []
    assert analysis.wasted_bytes == 0


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (saved_image([BASE])[:3000], "truncated or not a readable tar"),
        (saved_image([BASE])[:5000], "truncated or not a readable tar"),
        (b"this is not a tar at all" * 100, "not a readable tar"),
        (b"", "not a readable tar"),
    ],
)
def test_what_is_not_a_saved_image_is_a_clear_error(archive, message):
    with pytest.raises(LayerAnalysisError, match=message):
        analyse_saved_image(chunked(archive))


def test_a_tar_without_manifest_is_not_a_saved_image():
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("abc/layer.tar")
        info.size = len(BASE)
        tar.addfile(info, io.BytesIO(BASE))

    with pytest.raises(LayerAnalysisError, match="no manifest.json"):
        analyse_saved_image(chunked(archive.getvalue()))


def test_a_layer_missing_from_the_archive_is_an_error():
    archive = io.BytesIO()
    manifest = json.dumps([{"Config": "x.json", "Layers": ["abc/layer.tar"]}]).encode()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))

    with pytest.raises(LayerAnalysisError, match="abc/layer.tar named by manifest.json is missing"):
        analyse_saved_image(chunked(archive.getvalue()))


def test_layers_that_do_not_match_the_configs_diff_ids_are_an_error():
    archive = saved_image([BASE], diff_ids=["sha256:" + "0" * 64])

    with pytest.raises(LayerAnalysisError, match="do not match the image's diff_ids"):
        analyse_saved_image(chunked(archive))


def test_a_failed_analysis_closes_the_stream_it_was_reading():
    closed = []

    def stream() -> Iterator[bytes]:
        try:
            yield b"this is not a tar at all" * 100
            yield b"never read"
        finally:
            closed.append(True)

    with pytest.raises(LayerAnalysisError):
        analyse_saved_image(stream())

    assert closed == [True]


def test_an_engine_error_in_the_middle_of_the_stream_reaches_the_caller():
    def failing() -> Iterator[bytes]:
        yield saved_image([BASE])[:4096]
        raise EngineError("Exporting image x on unix:///var/run/docker.sock: connection reset")

    with pytest.raises(EngineError, match="connection reset"):
        analyse_saved_image(failing())


# -- memory ------------------------------------------------------------------------------------------------


def generated_saved_image(file_count: int, file_size: int) -> Iterator[bytes]:
    """A one-layer saved image of `file_count` zero-filled files, generated as it is read: never in memory."""
    block = b"\0" * 512
    headers = []
    for index in range(file_count):
        info = tarfile.TarInfo(f"blob/{index:04d}")
        info.size = file_size
        headers.append(info.tobuf(format=tarfile.GNU_FORMAT))
    padding = -file_size % 512
    layer_size = sum(len(header) for header in headers) + file_count * (file_size + padding) + 1024

    def layer() -> Iterator[bytes]:
        zeros = b"\0" * MiB
        for header in headers:
            yield header
            left = file_size + padding
            while left:
                piece = zeros[: min(left, MiB)]
                left -= len(piece)
                yield piece
        yield block * 2

    outer = tarfile.TarInfo("0" * 64 + "/layer.tar")
    outer.size = layer_size
    yield outer.tobuf(format=tarfile.GNU_FORMAT)
    yield from layer()
    yield b"\0" * (-layer_size % 512)
    manifest = json.dumps([{"Config": "none.json", "Layers": ["0" * 64 + "/layer.tar"]}]).encode()
    info = tarfile.TarInfo("manifest.json")
    info.size = len(manifest)
    yield info.tobuf(format=tarfile.GNU_FORMAT) + manifest + b"\0" * (-len(manifest) % 512)
    yield block * 2


def test_memory_stays_flat_whatever_the_image_size():
    tracemalloc.start()
    try:
        analysis = analyse_saved_image(generated_saved_image(file_count=24, file_size=8 * MiB))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert analysis.total_size == 24 * 8 * MiB
    assert len(analysis.layers[0].changes) == 24
    # 192 MiB went through; what stays in memory is a few read blocks.
    assert peak < 12 * MiB, peak
