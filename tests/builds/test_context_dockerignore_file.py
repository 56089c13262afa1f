"""`<Dockerfile>.dockerignore`: BuildKit's Dockerfile-specific ignore file, which replaces the context root's
`.dockerignore` when it exists (plan_context, stream_context, the preview API; no engine)."""

from __future__ import annotations

import io
import tarfile

import pytest

from builds.services import repositories
from builds.sources.context import (
    MAX_DOCKERIGNORE_BYTES,
    ContextError,
    context_dockerignore,
    dockerfile_ignore_name,
    plan_context,
    stream_context,
)
from tests.builds.archive_factory import tar_bytes

DOCKERFILE = b"FROM busybox:1.35.0\nCOPY . /ctx\n"

TREE = [
    ("Dockerfile", DOCKERFILE),
    (".dockerignore", b"a.txt\n"),
    ("Dockerfile.dockerignore", b"*.log\nDockerfile.dockerignore\n"),
    ("a.txt", b"a\n"),
    ("debug.log", b"log\n"),
    ("docs/guide.md", b"guide\n"),
    # -f build/app.Dockerfile: its own file, next to it (the root Dockerfile.dockerignore is not its file).
    ("build/app.Dockerfile", DOCKERFILE),
    ("build/app.Dockerfile.dockerignore", b"docs\n.dockerignore\nbuild/app.Dockerfile\n"),
    # A Dockerfile in a subfolder without a file of its own: the root .dockerignore.
    ("sub/Dockerfile", DOCKERFILE),
    ("sub/.dockerignore", b"*\n"),
    # A context folder: paths are relative to it.
    ("app/Dockerfile", DOCKERFILE),
    ("app/.dockerignore", b"keep.txt\n"),
    ("app/Dockerfile.dockerignore", b"tmp\n"),
    ("app/keep.txt", b"keep\n"),
    ("app/tmp/x", b"x\n"),
    # The specific file of ci/Dockerfile is a folder: not an ignore file, the root one applies.
    ("ci/Dockerfile", DOCKERFILE),
    ("ci/Dockerfile.dockerignore", None, tarfile.DIRTYPE),
    # Everything excluded but the Dockerfile, which BuildKit reads anyway.
    ("deep/x/Dockerfile", DOCKERFILE),
    ("deep/x/Dockerfile.dockerignore", b"*\n"),
]


@pytest.fixture
def source(repository):
    return repositories.add_archive_source(repository, io.BytesIO(tar_bytes(TREE, "gz")), "tree.tgz")


def sent(plan) -> set[str]:
    return {f.path for f in plan.included}


def streamed(source, dockerfile="Dockerfile", path=".") -> dict[str, bytes | None]:
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream_context(source, dockerfile, path)))) as tar:
        return {m.name: tar.extractfile(m).read() if m.isfile() else None for m in tar.getmembers()}


def files(tree: dict[str, bytes | None]) -> set[str]:
    return {name for name, content in tree.items() if content is not None}


def test_the_name_is_the_dockerfile_path_plus_dockerignore():
    assert dockerfile_ignore_name("Dockerfile") == "Dockerfile.dockerignore"
    assert dockerfile_ignore_name("build/app.Dockerfile") == "build/app.Dockerfile.dockerignore"


def test_the_dockerfile_specific_file_replaces_the_root_dockerignore(source):
    plan = plan_context(source)
    assert plan.dockerignore_file == "Dockerfile.dockerignore"
    assert plan.dockerignore == "*.log\nDockerfile.dockerignore\n"
    included = sent(plan)
    # a.txt is kept (the root .dockerignore is not read), debug.log and the specific file itself are not.
    assert {"Dockerfile", ".dockerignore", "a.txt", "docs/guide.md"} <= included
    assert "debug.log" not in included and "Dockerfile.dockerignore" not in included
    by_path = {f.path: f for f in plan.excluded}
    assert by_path["debug.log"].pattern == "*.log"
    assert by_path["Dockerfile.dockerignore"].pattern == "Dockerfile.dockerignore"
    assert files(streamed(source)) == {f.path for f in plan.included if f.kind == "file"}


def test_a_dockerfile_with_another_name_in_a_subfolder_uses_its_own_file(source):
    plan = plan_context(source, "build/app.Dockerfile")
    assert plan.dockerignore_file == "build/app.Dockerfile.dockerignore"
    included = sent(plan)
    # The patterns are relative to the context folder, like the Dockerfile path.
    assert not any(path.startswith("docs/") for path in included)
    assert ".dockerignore" not in included
    # The Dockerfile is sent though the patterns exclude it: BuildKit reads it whatever they say.
    assert "build/app.Dockerfile" in included
    assert {"a.txt", "Dockerfile.dockerignore", "build/app.Dockerfile.dockerignore", "debug.log"} <= included
    tree = streamed(source, "build/app.Dockerfile")
    assert files(tree) == {f.path for f in plan.included if f.kind == "file"}
    assert tree["build/app.Dockerfile"] == DOCKERFILE


def test_without_a_file_of_its_own_the_root_dockerignore_applies(source):
    plan = plan_context(source, "sub/Dockerfile")
    assert plan.dockerignore_file == ".dockerignore"
    assert plan.dockerignore == "a.txt\n"
    included = sent(plan)
    assert "a.txt" not in included
    # A .dockerignore in a subfolder is just a file; so is the root Dockerfile.dockerignore for this Dockerfile.
    assert {"sub/.dockerignore", "Dockerfile.dockerignore", "debug.log", "sub/Dockerfile"} <= included
    assert files(streamed(source, "sub/Dockerfile")) == {f.path for f in plan.included if f.kind == "file"}


def test_a_folder_named_like_the_specific_file_is_not_one(source):
    plan = plan_context(source, "ci/Dockerfile")
    assert plan.dockerignore_file == ".dockerignore"
    assert "a.txt" not in sent(plan)


def test_in_a_context_folder_the_files_are_relative_to_it(source):
    plan = plan_context(source, "Dockerfile", "app")
    assert plan.dockerignore_file == "Dockerfile.dockerignore"
    assert sent(plan) == {"Dockerfile", ".dockerignore", "Dockerfile.dockerignore", "keep.txt"}
    assert files(streamed(source, "Dockerfile", "app")) == sent(plan)


def test_the_dockerfile_is_sent_when_everything_else_is_left_out(source):
    plan = plan_context(source, "deep/x/Dockerfile")
    assert sent(plan) == {"deep/x/Dockerfile"}
    assert files(streamed(source, "deep/x/Dockerfile")) == {"deep/x/Dockerfile"}


def test_an_empty_specific_file_still_replaces_the_root_dockerignore(repository):
    tree = [("Dockerfile", DOCKERFILE), (".dockerignore", b"a.txt\n"), ("Dockerfile.dockerignore", b""),
            ("a.txt", b"a\n")]
    source = repositories.add_archive_source(repository, io.BytesIO(tar_bytes(tree)), "t.tar")
    plan = plan_context(source)
    assert plan.dockerignore_file == "Dockerfile.dockerignore" and plan.dockerignore == ""
    assert sent(plan) == {"Dockerfile", ".dockerignore", "Dockerfile.dockerignore", "a.txt"}
    assert context_dockerignore(source) == ("Dockerfile.dockerignore", "")


def test_no_ignore_file_at_all(repository):
    source = repositories.add_archive_source(repository, io.BytesIO(tar_bytes([("Dockerfile", DOCKERFILE)])),
                                             "t.tar")
    plan = plan_context(source)
    assert (plan.dockerignore_file, plan.dockerignore) == ("", "")
    assert context_dockerignore(source) == ("", "")


def test_the_specific_file_has_the_same_limits_and_checks(repository):
    big = [("Dockerfile", DOCKERFILE), ("Dockerfile.dockerignore", b"#" * (MAX_DOCKERIGNORE_BYTES + 1))]
    source = repositories.add_archive_source(repository, io.BytesIO(tar_bytes(big)), "big.tar")
    with pytest.raises(ContextError, match=r"The Dockerfile.dockerignore is larger than 1 MB"):
        plan_context(source)
    with pytest.raises(ContextError, match=r"larger than 1 MB"):
        stream_context(source)
    bad = [("Dockerfile", DOCKERFILE), (".dockerignore", b"ok\n"), ("x/Dockerfile", DOCKERFILE),
           ("x/Dockerfile.dockerignore", b"ok\n[\n")]
    source = repositories.add_archive_source(repository, io.BytesIO(tar_bytes(bad)), "bad.tar")
    message = r"The x/Dockerfile.dockerignore cannot be used: line 2: syntax error in pattern"
    with pytest.raises(ContextError, match=message):
        plan_context(source, "x/Dockerfile")
    with pytest.raises(ContextError, match=message):
        stream_context(source, "x/Dockerfile")
    with pytest.raises(ContextError, match=message):
        context_dockerignore(source, "x/Dockerfile")
    assert sent(plan_context(source)) == {"Dockerfile", ".dockerignore", "x/Dockerfile",
                                          "x/Dockerfile.dockerignore"}


def test_the_preview_api_keeps_its_shape(owner_api, source):
    response = owner_api.get(f"/api/v1/sources/{source.pk}/context/?dockerfile=build/app.Dockerfile")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"dockerfile", "path", "included", "excluded", "file_count", "size", "warnings"}
    assert "docs/guide.md" in body["excluded"] and "a.txt" in body["included"]
