from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.conf import settings

from builds import services
from tests.builds.archive_factory import HELLO_TREE, tar_bytes


@pytest.fixture(autouse=True)
def fresh_data_dir(settings, tmp_path):
    """Each test starts with empty source storage and scratch folders of its own."""
    settings.DATA_DIR = tmp_path / "data"
    settings.SOURCES_DIR = settings.DATA_DIR / "sources"
    settings.STORAGES = {
        **settings.STORAGES,
        "sources": {**settings.STORAGES["sources"], "OPTIONS": {
            **settings.STORAGES["sources"]["OPTIONS"], "location": settings.SOURCES_DIR}},
    }
    return settings.DATA_DIR


@pytest.fixture
def repository(owner):
    return services.create_repository(owner, "hello", "the sample")


@pytest.fixture
def hello_source(repository):
    data = tar_bytes(HELLO_TREE, "gz")
    return services.add_archive_source(repository, io.BytesIO(data), "hello.tar.gz")


def stored_files() -> list[Path]:
    """Every file the console keeps for sources, and every scratch file left behind."""
    roots = [Path(settings.SOURCES_DIR), Path(settings.DATA_DIR) / "tmp"]
    return sorted(p for root in roots if root.exists() for p in root.rglob("*") if p.is_file())
