"""The engine wrapper against the real build engine, and against addresses where nothing answers."""

from __future__ import annotations

import pytest

from console.engine import Engine, EngineNotFound, EngineUnavailable, TLSMaterial

# Needs the real engine (left out of `make test-fast`).
pytestmark = pytest.mark.engine


def test_it_reads_the_real_engines_information(settings):
    with Engine.for_builds() as engine:
        info = engine.info()
    assert info["server_version"]
    assert info["api_version"]
    assert info["storage_driver"] in {"overlay2", "btrfs", "devicemapper", "aufs", "vfs", "zfs", "fuse-overlayfs"}
    assert info["cpus"] >= 1
    assert info["images"] >= 1


def test_an_engine_that_does_not_answer_is_a_readable_error():
    with pytest.raises(EngineUnavailable) as caught, Engine("tcp://127.0.0.1:9", timeout=3) as engine:
        engine.ping()
    assert str(caught.value) == (
        "Connecting: the Docker Engine at tcp://127.0.0.1:9 does not answer (connection refused)"
    )


def test_a_missing_socket_is_a_readable_error(tmp_path):
    with pytest.raises(EngineUnavailable, match="does not answer"), Engine(f"unix://{tmp_path}/none.sock") as engine:
        engine.info()


def test_unusable_tls_material_is_a_readable_error():
    material = TLSMaterial(ca_cert="not a pem", client_cert="not a pem", client_key="not a pem")
    with pytest.raises(EngineUnavailable) as caught, Engine("tcp://127.0.0.1:9", tls=material, timeout=3) as engine:
        engine.ping()
    assert "tcp://127.0.0.1:9" in str(caught.value)


def test_a_missing_image_is_not_found():
    with Engine.for_builds() as engine:
        assert engine.image_exists("busybox:1.35.0") is True
        assert engine.image_exists("console-test/never-made:nope") is False
        with pytest.raises(EngineNotFound):
            engine.tag_image("console-test/never-made:nope", "x", "y")


def test_closing_removes_the_tls_files():
    material = TLSMaterial(ca_cert="a", client_cert="b", client_key="c")
    engine = Engine("tcp://127.0.0.1:9", tls=material, timeout=1)
    engine._tls_config()
    folder = engine._tls_dir.name
    engine.close()
    import os

    assert not os.path.exists(folder)
