from __future__ import annotations

import io
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings

from builds import access
from builds.services import repositories
from tests.builds.archive_factory import HELLO_TREE, tar_bytes
from tests.fixtures.worker import routed_to, running_worker

BUSYBOX = "busybox:1.35.0"


@pytest.fixture(autouse=True)
def empty_source_storage():
    """Each test starts with empty source storage and scratch folders (the same folders the workers that
    tests start use, so they stay where they are)."""
    for folder in (Path(settings.SOURCES_DIR), Path(settings.DATA_DIR) / "tmp"):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)


# How long a test's end waits for the image analyses its builds started (BuildRunner.finished asks for one).
ANALYSIS_WAIT_SECONDS = 60


@pytest.fixture(autouse=True)
def analyses_done_before_the_flush(request):
    """A transactional test's tables are emptied (TRUNCATE) when it ends; an image analysis the worker still runs
    for one of its builds writes at the same moment, and PostgreSQL breaks the deadlock by failing the flush, which
    leaves the rows for the next test. Such a test ends once its analyses have (queued ones too: a worker claims
    them within a moment)."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        yield
        return
    # Asked for here, so that this fixture's end runs before the flush.
    request.getfixturevalue("transactional_db")
    yield
    from builds.models import ImageAnalysis
    from console.constants import FINAL_STATUSES

    deadline = time.monotonic() + ANALYSIS_WAIT_SECONDS
    while (ImageAnalysis.objects.exclude(status__in=FINAL_STATUSES).exists()
           and time.monotonic() < deadline):
        time.sleep(0.1)


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real Celery worker for the module's builds (a module may define its own, with other settings)."""
    with running_worker(tmp_path_factory.mktemp("worker")) as running, routed_to(running):
        yield running


@pytest.fixture
def shared_busybox(django_db_blocker):
    """busybox:1.35.0 shared as an operator shares it, the base image builds start FROM (each test empties the
    tables, so it is shared again for each test that asks)."""
    image_id = subprocess.run(["/usr/bin/docker", "image", "inspect", "-f", "{{.Id}}", BUSYBOX],
                              capture_output=True, text=True, check=True).stdout.strip()
    with django_db_blocker.unblock():
        access.share_image(BUSYBOX, image_id)
    return image_id


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
