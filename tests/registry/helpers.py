"""Small helpers shared by the registry tests."""

from __future__ import annotations

import io
import logging
import secrets
import tarfile

import pytest

from console.engine import Engine
from registry.models import RegistryAccount


def account_for(owner, server, secret: str | None = None, name: str = "lab") -> RegistryAccount:
    """A generic account on one of the fixture's registries."""
    return RegistryAccount.objects.create(
        owner=owner, name=name, kind="generic", url=server.url, username=server.username,
        secret=server.password if secret is None else secret,
    )


def make_unique_image(engine: Engine) -> tuple[str, str]:
    """A one-layer image no registry has seen: (reference, id)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        data = secrets.token_bytes(64 * 1024)
        info = tarfile.TarInfo("random.bin")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    repository = f"registry-test-{secrets.token_hex(4)}"
    image_id = engine.import_image([buffer.getvalue()], repository, "1")
    return f"{repository}:1", image_id


@pytest.fixture
def unique_image(request):
    with Engine.for_builds() as engine:
        reference, image_id = make_unique_image(engine)
        if "owner" in request.fixturenames:
            # The owner's image (builds/access.py lets a user push only images their records hold).
            from builds.models import Image

            Image.objects.create(owner=request.getfixturevalue("owner"), image_id=image_id, tags=[reference])
        yield reference
        # A test may have removed it already (to pull it back).
        if engine.image_exists(image_id):
            engine.api.remove_image(image_id, force=True)


@pytest.fixture
def all_logs(caplog):
    """Every log record at every level, so that tests can check no secret is ever logged."""
    caplog.set_level(logging.DEBUG)
    return caplog
