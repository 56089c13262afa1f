"""The context stream against the real engine: what ends up in an image built from our stream equals what
ends up in an image the Docker CLI builds from the same tree unpacked on disk."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tracemalloc
import uuid

import pytest

from builds.services import repositories
from builds.sources.context import stream_context
from tests.builds.archive_factory import tar_bytes

LIST_CTX = "cd /ctx && find . | sort && find . -type f | sort | xargs md5sum"

TREE = [
    ("Dockerfile", b"FROM busybox:1.35.0\nCOPY . /ctx\n"),
    (".dockerignore", b"**/*.log\nbuild\n!build/keep/**\nDockerfile\nsecret.txt\nnode_modules\n"),
    ("node_modules/dep/index.js", b"module.exports = 1\n"),
    ("node_modules/dep/lib/deep.js", b"deep\n"),
    ("linked-dep.js", None, tarfile.LNKTYPE, "node_modules/dep/index.js"),
    ("app/main.sh", b"echo main\n"),
    ("app/logs/today.log", b"x\n"),
    ("build/out.o", b"obj\n"),
    ("build/keep/a.txt", b"keep me\n"),
    ("secret.txt", b"hidden original\n"),
    ("hard-copy.txt", None, tarfile.LNKTYPE, "secret.txt"),
    ("app/link", None, tarfile.SYMTYPE, "main.sh"),
    ("empty", None, tarfile.DIRTYPE),
    ("services/api/Dockerfile", b"FROM busybox:1.35.0\nCOPY . /ctx\n"),
    ("services/api/.dockerignore", b"*.tmp\n"),
    ("services/api/run.sh", b"echo api\n"),
    ("services/api/scratch.tmp", b"tmp\n"),
    ("services/api/hard-run.sh", None, tarfile.LNKTYPE, "services/api/run.sh"),
    ("docker/Dockerfile.dev", b"FROM busybox:1.35.0\nCOPY . /ctx\n"),
]


def docker(*args: str, stdin: bytes | None = None) -> str:
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    result = subprocess.run(["docker", *args], input=stdin, capture_output=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


@pytest.fixture
def images():
    made: list[str] = []
    yield made
    for image_id in made:
        subprocess.run(["docker", "rmi", "-f", image_id], capture_output=True)


def build_and_list(images: list[str], *build_args: str, stdin: bytes | None = None) -> str:
    tag = f"console-test-ctx:{uuid.uuid4().hex[:10]}"
    docker("build", "-q", "-t", tag, *build_args, stdin=stdin)
    images.append(docker("image", "inspect", "--format", "{{.Id}}", tag).strip())
    return docker("run", "--rm", tag, "sh", "-c", LIST_CTX)


@pytest.mark.parametrize(("dockerfile", "path"), [
    ("Dockerfile", "."),
    ("Dockerfile", "services/api"),
    ("docker/Dockerfile.dev", "."),
])
def test_the_image_holds_what_the_cli_would_have_sent(repository, images, tmp_path, dockerfile, path):
    data = tar_bytes(TREE)
    source = repositories.add_archive_source(repository, io.BytesIO(data), "tree.tar")
    unpacked = tmp_path / "tree"
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(unpacked, filter="fully_trusted")
    context_dir = unpacked / path
    expected = build_and_list(images, "-f", str(context_dir / dockerfile), str(context_dir))
    ours = b"".join(stream_context(source, dockerfile, path))
    actual = build_and_list(images, "-f", dockerfile, "-", stdin=ours)
    assert actual == expected
    assert "./app/main.sh" in expected or "./run.sh" in expected


def test_the_stream_is_a_valid_tar_of_only_what_is_sent(repository):
    source = repositories.add_archive_source(repository, io.BytesIO(tar_bytes(TREE, "gz")), "tree.tgz")
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream_context(source)))) as archive:
        names = {member.name: member for member in archive.getmembers()}
        assert archive.extractfile("build/keep/a.txt").read() == b"keep me\n"
        # The hard link's target is left out: its bytes travel as a plain file.
        assert names["hard-copy.txt"].isreg()
        assert archive.extractfile("hard-copy.txt").read() == b"hidden original\n"
    assert "secret.txt" not in names and "build/out.o" not in names and "app/logs/today.log" not in names
    # A folder the walk never enters is passed over whole; a hard link into it still brings its bytes.
    assert not any(name.startswith("node_modules") for name in names)
    assert names["linked-dep.js"].isreg()
    assert "Dockerfile" in names and ".dockerignore" in names


def test_memory_stays_flat_while_streaming(repository):
    tree = [("Dockerfile", b"FROM busybox:1.35.0\n")] + [(f"f/{n}.bin", os.urandom(64 * 1024)) for n in range(160)]
    source = repositories.add_archive_source(repository, io.BytesIO(tar_bytes(tree)), "big.tar")
    tracemalloc.start()
    total = sum(len(chunk) for chunk in stream_context(source))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total > 10 * 1024 * 1024
    assert peak < 4 * 1024 * 1024
