"""The image page for images the real engine built, on the classic builder and on BuildKit: the history entries
each builder writes are shown as the Dockerfile's instructions, the config in exec form, and the analysis's
wasted bytes with the file that wastes them. Images are named console-test/imagepage-* and removed by id."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from builds import tasks
from builds.constants import ImageOrigin
from builds.services import analysis
from builds.services.images import record_image
from console.engine import Engine
from tests.builds.build_helpers import remove_images

pytestmark = [pytest.mark.engine, pytest.mark.django_db]
DOCKER = "/usr/bin/docker"
DOCKERFILE = """FROM busybox:1.35.0
ENV GREETING=hello
RUN echo first-version-of-the-file > /data.txt
RUN echo second > /data.txt
CMD ["sh", "-c", "echo $GREETING"]
"""
# The first RUN's /data.txt (25 bytes with its newline), hidden by the second RUN's.
WASTED = len("first-version-of-the-file\n")


def build(context: Path, buildkit: bool, tag: str) -> str:
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(DOCKERFILE)
    env = {**os.environ, "DOCKER_BUILDKIT": "1" if buildkit else "0"}
    done = subprocess.run([DOCKER, "build", "-q", "-t", tag, str(context)], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[dict[str, str]]:
    made: dict[str, str] = {}
    try:
        for name, buildkit in (("classic", False), ("buildkit", True)):
            made[name] = build(tmp_path_factory.mktemp(name), buildkit, f"console-test/imagepage-{name}:1")
        yield made
    finally:
        remove_images(*made.values())


@pytest.mark.parametrize("builder", ["classic", "buildkit"])
def test_the_page_words_each_builders_image_as_its_dockerfile(owner, owner_client, built, builder):
    with Engine.for_builds(timeout=120) as engine:
        image = record_image(owner, engine, built[builder], ImageOrigin.BUILT)
    assert analysis.request_analysis(image) is True
    tasks.analyse_image(image.pk)
    image.refresh_from_db()
    assert image.analysis_status == "succeeded", image.analysis_error
    assert image.wasted_bytes == WASTED

    body = owner_client.get(f"/images/{image.pk}/").content.decode()

    assert '<code id="config-cmd">[&quot;sh&quot;, &quot;-c&quot;, &quot;echo $GREETING&quot;]</code>' in body
    layers = body[body.index('id="image-layers"'):]
    shown = re.findall(r'<code class="instruction" title="[^"]*">([^<]*)</code>', layers)
    raw = re.findall(r'<code class="instruction" title="([^"]*)">', layers)
    # Each builder's own text is kept in the titles: the forms this test is about.
    assert any(("# buildkit" if builder == "buildkit" else "#(nop)") in text for text in raw)
    assert "ENV GREETING=hello" in shown
    assert "RUN echo first-version-of-the-file &gt; /data.txt" in shown and "RUN echo second &gt; /data.txt" in shown
    assert "CMD [&quot;sh&quot;, &quot;-c&quot;, &quot;echo $GREETING&quot;]" in shown
    assert not [text for text in shown if "#(nop)" in text or "/bin/sh -c" in text or "# buildkit" in text]
    efficiency = re.search(r'<strong id="efficiency">([^<]*) %</strong>', body).group(1)
    assert float(efficiency.lstrip("<>")) < 100
    wasted = body[body.index('id="wasted-files-table"'):]
    assert "<code>/data.txt</code>" in wasted
