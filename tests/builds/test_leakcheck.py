"""The leak check over hand-made `docker save` streams: engine 20.10's layout and the OCI layout, plain and
gzip-compressed layers, values in file contents (across every read-block boundary), names, link targets,
extended headers, the image config and its history; values too short to check; streams that cannot be read.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import tracemalloc
from collections.abc import Iterator

import pytest

from builds import leakcheck
from builds.leakcheck import HISTORY, IMAGE_CONFIG, LEAK, TOO_SHORT, Leak, LeakCheckError, find_leaks

TOKEN = "s3cr3t-t0ken-4f9a2c"
OTHER = "another-value-77d1e0"

File = tuple[str, bytes] | tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]


def layer_tar(files: list[File]) -> bytes:
    """A layer tar of (path, content) files, or TarInfos (links, headers) with or without content."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for item in files:
            if isinstance(item, tarfile.TarInfo):
                archive.addfile(item)
            elif isinstance(item[0], tarfile.TarInfo):
                info, content = item
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
            else:
                path, content = item
                info = tarfile.TarInfo(path)
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return out.getvalue()


def config_for(layers: list[bytes], env: list[str] | None = None, history: list[str] | None = None,
               labels: dict[str, str] | None = None) -> dict:
    return {
        "architecture": "amd64",
        "config": {"Env": env or ["PATH=/bin"], "Labels": labels or {}, "Cmd": ["sh"]},
        "history": [{"created_by": step} for step in history or ["/bin/sh -c #(nop) ADD file:abc in /"]],
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(tar).hexdigest()}" for tar in layers]},
    }


def add(archive: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    archive.addfile(info, io.BytesIO(content))


def saved_image(layers: list[bytes], config: dict | None = None, compress: bool = False) -> bytes:
    """Engine 20.10's `docker save`: `<id>/layer.tar` (and its legacy json) per layer, `<id>.json`, manifest.json,
    in name order as the engine writes them (so the manifest comes last)."""
    config = config or config_for(layers)
    config_bytes = json.dumps(config).encode()
    config_id = hashlib.sha256(config_bytes).hexdigest()
    out = io.BytesIO()
    paths = []
    with tarfile.open(fileobj=out, mode="w") as archive:
        for index, tar in enumerate(layers):
            layer_id = hashlib.sha256(b"%d" % index + tar).hexdigest()
            paths.append(f"{layer_id}/layer.tar")
        for path, tar in sorted(zip(paths, layers, strict=True)):
            add(archive, path.replace("layer.tar", "json"), json.dumps({"id": path.split("/")[0]}).encode())
            add(archive, path, gzip.compress(tar) if compress else tar)
        add(archive, f"{config_id}.json", config_bytes)
        add(archive, "manifest.json", json.dumps(
            [{"Config": f"{config_id}.json", "RepoTags": ["console-test/leak:1"], "Layers": paths}]).encode())
    return out.getvalue()


def oci_image(layers: list[bytes], config: dict | None = None, compress: bool = False,
              with_manifest_json: bool = True) -> bytes:
    """The OCI layout newer engines write: blobs/sha256/<digest> for layers, config and manifest; index.json."""
    config = config or config_for(layers)
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return digest

    layer_digests = [blob(gzip.compress(tar) if compress else tar) for tar in layers]
    config_digest = blob(json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": f"sha256:{config_digest}"},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": f"sha256:{digest}"}
                   for digest in layer_digests],
    }
    manifest_digest = blob(json.dumps(manifest).encode())
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for digest in sorted(blobs):
            add(archive, f"blobs/sha256/{digest}", blobs[digest])
        add(archive, "index.json", json.dumps({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{manifest_digest}"}]}
        ).encode())
        if with_manifest_json:
            add(archive, "manifest.json", json.dumps([{
                "Config": f"blobs/sha256/{config_digest}", "RepoTags": [],
                "Layers": [f"blobs/sha256/{digest}" for digest in layer_digests]}]).encode())
        add(archive, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    return out.getvalue()


def chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset:offset + size]


BASE = layer_tar([("bin/sh", b"\x7fELF busybox"), ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")])


def places(leaks: list[Leak]) -> list[tuple[str, str]]:
    return [(leak.secret, leak.where) for leak in leaks]


def test_it_finds_nothing_in_a_clean_image():
    assert find_leaks(chunks(saved_image([BASE, layer_tar([("app/main.py", b"print('hi')\n")])])),
                      {"TOKEN": TOKEN}) == []


@pytest.mark.parametrize("offset", range(0, 70))
def test_it_finds_a_value_split_at_any_point_across_read_blocks(monkeypatch, offset):
    # Blocks of 32 bytes and a 19-byte value: some offset splits it at each of its bytes, some put it inside
    # one block, and with the value in two blocks' overlap too.
    monkeypatch.setattr(leakcheck, "READ_BLOCK", 32)
    content = b"x" * offset + TOKEN.encode() + b"y" * 50
    leaks = find_leaks(chunks(saved_image([BASE, layer_tar([("app/config.ini", content)])]), 7), {"TOKEN": TOKEN})
    assert places(leaks) == [("TOKEN", "layer 2: app/config.ini")]


def test_it_finds_a_value_longer_than_a_read_block(monkeypatch):
    monkeypatch.setattr(leakcheck, "READ_BLOCK", 64)
    key = "-----BEGIN KEY-----" + "Zm9vYmFy" * 100 + "-----END KEY-----"
    content = b"head " * 33 + key.encode() + b" tail"
    leaks = find_leaks(io.BytesIO(saved_image([BASE, layer_tar([("root/.ssh/id", content)])])), {"KEY": key})
    assert places(leaks) == [("KEY", "layer 2: root/.ssh/id")]
    # Almost the value is not the value.
    near = find_leaks(io.BytesIO(saved_image([layer_tar([("root/.ssh/id", content[:-6])])])), {"KEY": key + "!"})
    assert near == []


def test_it_finds_a_value_across_the_default_block_boundary():
    content = bytearray(3 * 1024 * 1024)
    start = leakcheck.READ_BLOCK - 7
    content[start:start + len(TOKEN)] = TOKEN.encode()
    leaks = find_leaks(chunks(saved_image([layer_tar([("data/blob.bin", bytes(content))])]), 65536),
                       {"TOKEN": TOKEN})
    assert places(leaks) == [("TOKEN", "layer 1: data/blob.bin")]


def test_a_value_in_a_file_name_is_reported_without_the_value():
    leaks = find_leaks(saved_image([BASE, layer_tar([(f"app/{TOKEN}.txt", b"nothing here")])]), {"TOKEN": TOKEN})
    assert places(leaks) == [("TOKEN", "layer 2: app/[TOKEN].txt (file name)")]
    assert TOKEN not in repr(leaks) and TOKEN not in leaks[0].message()


def test_a_value_in_a_link_target_or_an_extended_header_is_found():
    link = tarfile.TarInfo("etc/token")
    link.type = tarfile.SYMTYPE
    link.linkname = f"/run/{TOKEN}"
    tagged = tarfile.TarInfo("app/tagged")
    tagged.pax_headers = {"SCHILY.xattr.user.note": f"token={TOKEN}"}
    leaks = find_leaks(saved_image([layer_tar([link, (tagged, b"plain")])]), {"TOKEN": TOKEN})
    assert places(leaks) == [("TOKEN", "layer 1: app/tagged (file attributes)"),
                             ("TOKEN", "layer 1: etc/token (link target)")]


def test_values_in_the_config_and_its_history_are_found_by_where_they_are():
    layers = [BASE]
    config = config_for(layers, env=["PATH=/bin", f"API_TOKEN={TOKEN}"],
                        history=["/bin/sh -c #(nop) ADD file:abc in /", f"|1 PASSWORD={OTHER} /bin/sh -c make"])
    leaks = find_leaks(saved_image(layers, config), {"TOKEN": TOKEN, "PASSWORD": OTHER})
    assert places(leaks) == [("TOKEN", IMAGE_CONFIG), ("PASSWORD", HISTORY)]
    assert all(leak.kind == LEAK for leak in leaks)
    assert leaks[0].message() == "The secret TOKEN is in the image: image config."


def test_a_value_that_json_escapes_is_found_in_the_config():
    value = 'p<a>&"ss\\w0rd'
    # Go's encoder writes < > & as \u003c \u003e \u0026: the raw bytes do not hold the value.
    raw = json.dumps(config_for([BASE], labels={"note": value})).replace("<", "\\u003c").replace(">", "\\u003e")
    assert value.encode() not in raw.encode()
    leaks = find_leaks(saved_image([BASE], json.loads(raw)), {"PW": value})
    assert places(leaks) == [("PW", IMAGE_CONFIG)]


def test_of_two_secrets_only_the_one_that_leaked_is_reported():
    layers = [BASE, layer_tar([("app/.env", f"TOKEN={TOKEN}\n".encode())])]
    leaks = find_leaks(saved_image(layers), {"TOKEN": TOKEN, "OTHER": OTHER})
    assert places(leaks) == [("TOKEN", "layer 2: app/.env")]


def test_layers_are_numbered_in_the_manifest_order_not_the_archive_order():
    layers = [layer_tar([(f"layer{index}", b"filler")]) for index in range(5)]
    layers[3] = layer_tar([("app/secret", TOKEN.encode())])
    leaks = find_leaks(saved_image(layers), {"TOKEN": TOKEN})
    assert places(leaks) == [("TOKEN", "layer 4: app/secret")]


def test_a_value_in_a_gzip_compressed_layer_is_found():
    layers = [BASE, layer_tar([("app/token", TOKEN.encode())])]
    assert places(find_leaks(saved_image(layers, compress=True), {"TOKEN": TOKEN})) == [
        ("TOKEN", "layer 2: app/token")]


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("with_manifest_json", [True, False])
def test_the_oci_layout_is_read(compress, with_manifest_json):
    layers = [BASE, layer_tar([("app/token", TOKEN.encode())]), layer_tar([("empty", b"")])]
    config = config_for(layers, history=["ADD base", f"RUN echo {OTHER}", "RUN true"])
    saved = oci_image(layers, config, compress=compress, with_manifest_json=with_manifest_json)
    leaks = find_leaks(chunks(saved, 4096), {"TOKEN": TOKEN, "OTHER": OTHER})
    # Without manifest.json the numbers come from the OCI manifest's layers.
    assert places(leaks) == [("OTHER", HISTORY), ("TOKEN", "layer 2: app/token")]


def test_an_empty_layer_in_the_oci_layout_is_a_layer():
    empty = layer_tar([])
    assert len(empty) == 10240 and not empty.strip(b"\0")
    assert find_leaks(oci_image([empty, BASE]), {"TOKEN": TOKEN}) == []


def test_values_too_short_to_check_are_reported_and_not_searched_for():
    layers = [BASE, layer_tar([("app/a", f"{TOKEN} abc x".encode())])]
    leaks = find_leaks(saved_image(layers), {"ONE": "x", "THREE": "abc", "EMPTY": "", "TOKEN": TOKEN})
    assert [(leak.secret, leak.kind) for leak in leaks] == [
        ("ONE", TOO_SHORT), ("THREE", TOO_SHORT), ("EMPTY", TOO_SHORT), ("TOKEN", LEAK)]
    assert leaks[0].where == f"not checked: shorter than {leakcheck.MIN_SECRET_LENGTH} bytes"
    assert "too short" in leaks[0].message()
    # Four bytes are enough; length is counted in UTF-8 bytes.
    assert [leak.kind for leak in find_leaks(saved_image(layers), {"FOUR": "bc x", "WIDE": "\u00e9\u00e9"})] == [
        LEAK]


def test_a_tar_inside_the_image_is_bytes_a_gzip_inside_it_is_not_opened():
    inner = layer_tar([("token.txt", TOKEN.encode())])
    layers = [layer_tar([("app/bundle.tar", inner), ("app/bundle.tar.gz", gzip.compress(inner))])]
    assert places(find_leaks(saved_image(layers), {"TOKEN": TOKEN})) == [("TOKEN", "layer 1: app/bundle.tar")]


def test_places_per_secret_are_bounded(monkeypatch):
    monkeypatch.setattr(leakcheck, "MAX_PLACES_PER_SECRET", 3)
    layers = [layer_tar([(f"app/{index}", TOKEN.encode()) for index in range(10)])]
    assert len(find_leaks(saved_image(layers), {"TOKEN": TOKEN})) == 3


def generated_saved_image(file_count: int, file_size: int, tail: bytes) -> Iterator[bytes]:
    """A saved image of one layer of zero-filled files, the last one ending in `tail`, made as it is read."""
    mib = 1024 * 1024
    headers = []
    for index in range(file_count):
        info = tarfile.TarInfo(f"blob/{index:04d}")
        info.size = file_size
        headers.append(info.tobuf(format=tarfile.GNU_FORMAT))
    padding = -file_size % 512
    layer_size = sum(len(header) for header in headers) + file_count * (file_size + padding) + 1024
    outer = tarfile.TarInfo("0" * 64 + "/layer.tar")
    outer.size = layer_size
    yield outer.tobuf(format=tarfile.GNU_FORMAT)
    zeros = bytes(mib)
    for index, header in enumerate(headers):
        yield header
        left = file_size - (len(tail) if index == file_count - 1 else 0)
        while left:
            piece = zeros[: min(left, mib)]
            left -= len(piece)
            yield piece
        if index == file_count - 1:
            yield tail
        yield bytes(padding)
    yield bytes(1024 + -layer_size % 512)
    manifest = json.dumps([{"Config": "none.json", "Layers": ["0" * 64 + "/layer.tar"]}]).encode()
    info = tarfile.TarInfo("manifest.json")
    info.size = len(manifest)
    yield info.tobuf(format=tarfile.GNU_FORMAT) + manifest + bytes(-len(manifest) % 512) + bytes(1024)


def test_memory_stays_flat_whatever_the_image_size():
    tracemalloc.start()
    try:
        leaks = find_leaks(generated_saved_image(12, 8 * 1024 * 1024, TOKEN.encode()), {"TOKEN": TOKEN})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert places(leaks) == [("TOKEN", "layer 1: blob/0011")]
    # 96 MiB went through; what stays in memory is a few read blocks.
    assert peak < 12 * 1024 * 1024, peak


def test_it_closes_the_stream_it_consumed():
    closed = []

    def stream():
        try:
            yield from chunks(saved_image([BASE]))
        finally:
            closed.append(True)

    assert find_leaks(stream(), {"TOKEN": TOKEN}) == []
    assert closed == [True]


def test_a_stream_that_is_not_a_saved_image_fails_the_check():
    with pytest.raises(LeakCheckError, match="not a readable tar"):
        find_leaks([b"not a tar at all" * 100], {"TOKEN": TOKEN})
    with pytest.raises(LeakCheckError, match="truncated"):
        find_leaks([saved_image([BASE, layer_tar([("a", b"x" * 5000)])])[:3000]], {"TOKEN": TOKEN})


def test_a_layer_that_cannot_be_read_fails_the_check():
    zstd = b"\x28\xb5\x2f\xfd" + b"\0" * 600
    with pytest.raises(LeakCheckError, match="zstd"):
        find_leaks(oci_image([zstd]), {"TOKEN": TOKEN})
    with pytest.raises(LeakCheckError, match="not a readable tar"):
        find_leaks(saved_image([b"garbage" * 200]), {"TOKEN": TOKEN})


def test_a_gzip_layer_that_expands_too_far_fails_the_check(monkeypatch):
    monkeypatch.setattr(leakcheck, "MAX_EXPANSION", 2)
    monkeypatch.setattr(leakcheck, "READ_BLOCK", 4096)
    bomb = layer_tar([("zeros", bytes(2 * 1024 * 1024))])
    with pytest.raises(LeakCheckError, match="decompresses to more than 2 times"):
        find_leaks(saved_image([bomb], compress=True), {"TOKEN": TOKEN})


def test_a_layer_saved_as_a_link_to_another_is_numbered_where_it_first_comes():
    secret_layer = layer_tar([("app/token", TOKEN.encode())])
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        add(archive, "aaaa/layer.tar", BASE)
        add(archive, "bbbb/layer.tar", secret_layer)
        link = tarfile.TarInfo("cccc/layer.tar")
        link.type = tarfile.SYMTYPE
        link.linkname = "../bbbb/layer.tar"
        archive.addfile(link)
        add(archive, "VERSION-notes", f"v1 {TOKEN}".encode())
        add(archive, "manifest.json", json.dumps(
            [{"Config": "x.json", "Layers": ["aaaa/layer.tar", "cccc/layer.tar", "bbbb/layer.tar"]}]).encode())
    assert places(find_leaks(out.getvalue(), {"TOKEN": TOKEN})) == [
        ("TOKEN", "layer 2: app/token"), ("TOKEN", "archive member VERSION-notes")]


def test_metadata_too_deep_or_not_json_is_still_searched_as_bytes():
    deep = b"[" * 100000 + TOKEN.encode() + b"]" * 100000
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        add(archive, "index.json", deep)
        add(archive, "manifest.json", b"[]")
    assert places(find_leaks(out.getvalue(), {"TOKEN": TOKEN})) == [("TOKEN", "image manifest")]
