"""Making sources from small trees and following builds to their end, for the build tests."""

from __future__ import annotations

import io
import subprocess

from builds.models import Build, Source
from builds.services import repositories
from tests.builds.archive_factory import tar_bytes
from tests.fixtures.worker import wait_for

# A Dockerfile with a step of most kinds (config-only ones too), for the builders' end-to-end tests.
MULTI_STEP = """FROM busybox:1.35.0
LABEL team=builders
ENV GREETING=hello
RUN echo "$GREETING" > /greeting
WORKDIR /app
COPY app.sh /app/app.sh
RUN sh /app/app.sh > /app/out
CMD ["cat", "/app/out"]
"""


def source_from(repository, files: dict[str, str | bytes]) -> Source:
    tree = [(name, content.encode() if isinstance(content, str) else content) for name, content in files.items()]
    return repositories.add_archive_source(repository, io.BytesIO(tar_bytes(tree)), "tree.tar")


def wait_for_build(build: Build, timeout: float = 120, state: set[str] | None = None) -> Build:
    def done():
        build.refresh_from_db()
        return build.status in (state or {"succeeded", "failed", "cancelled"})

    wait_for(done, timeout=timeout, message=f"build {build.pk} to end (now {build.status})")
    return build


def remove_images(*image_ids: str) -> None:
    for image_id in image_ids:
        if image_id:
            subprocess.run(["docker", "rmi", "-f", image_id], capture_output=True)


def containers_with_ancestor(image_id: str) -> list[str]:
    result = subprocess.run(["docker", "ps", "-aq", "--filter", f"ancestor={image_id}"], capture_output=True,
                            text=True)
    return result.stdout.split()
