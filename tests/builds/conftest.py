from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from builds.services import repositories
from tests.builds.archive_factory import HELLO_TREE, tar_bytes


@pytest.fixture(autouse=True)
def empty_source_storage():
    """Each test starts with empty source storage and scratch folders (the same folders the workers that
    tests start use, so they stay where they are)."""
    for folder in (Path(settings.SOURCES_DIR), Path(settings.DATA_DIR) / "tmp"):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)


@pytest.fixture
def repository(owner):
    return repositories.create_repository(owner, "hello", "the sample")


@pytest.fixture
def hello_source(repository):
    data = tar_bytes(HELLO_TREE, "gz")
    return repositories.add_archive_source(repository, io.BytesIO(data), "hello.tar.gz")


def stored_files() -> list[Path]:
    """Every file the console keeps for sources, and every scratch file left behind."""
    roots = [Path(settings.SOURCES_DIR), Path(settings.DATA_DIR) / "tmp"]
    return sorted(p for root in roots if root.exists() for p in root.rglob("*") if p.is_file())
