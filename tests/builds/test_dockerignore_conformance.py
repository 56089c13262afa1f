"""Conformance of builds.sources.dockerignore with the real Docker CLI and engine.

Each case is a small tree. It is built twice on the real engine with the classic builder
(`FROM busybox:1.35.0` + `COPY . /ctx-<run>/`): once by `docker build DIR` (the CLI applies the `.dockerignore`),
once from OUR tar context (the tree filtered by `is_sent`, sent through the console's engine wrapper). What each image
holds under the copy folder is read from its COPY layer (`docker save`, no container needed) and both are
compared with the listing the module predicts directly.

The reference is the `docker` on PATH, Docker CLI 28 on these machines (/usr/local/bin/docker): it is the
CLI people use today, and its rules (moby/patternmatcher v0.6, go-archive) are the ones the module reproduces.
The Debian CLI 20.10 in /usr/bin uses older rules (no prefix/suffix fast paths), so it is not the reference.

The BuildKit cases (`BUILDKIT_CASES`) are about which ignore file applies: BuildKit's Dockerfile frontend reads
`<Dockerfile>.dockerignore` in place of the context root's `.dockerignore`. Their reference is
`DOCKER_BUILDKIT=1 /usr/bin/docker build -f DIR/<dockerfile> DIR` (Debian's CLI 20.10 and the engine's BuildKit,
as builds run), against the console's own stream (`stream_context` of the tree stored as a source) sent on
standard input with `-f <dockerfile> -`, as the BuildKit runner sends it (BuildKit applies no ignore file to a
tar context, so what the console streams is what COPY sees). Their patterns avoid the walk's edge cases, where
the CLI 20.10's fsutil walk and the rules above differ.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from builds.services import repositories
from builds.sources.context import plan_context, stream_context
from builds.sources.dockerignore import DockerIgnore, dropped_by_engine, is_sent
from console.engine import Engine, EngineError

pytestmark = pytest.mark.engine

BASE_IMAGE = "busybox:1.35.0"
BUILD_ENV = {**os.environ, "DOCKER_BUILDKIT": "0"}


@dataclass(frozen=True)
class Case:
    """A tree (`files`: paths in the case folder, folders end with '/') and the `.dockerignore` of its context."""

    name: str
    ignore: str | None
    files: tuple[str, ...]
    dockerfile: str = "Dockerfile"
    context: str = ""
    # The CLI itself fails (its Dockerfile never reaches the engine): we must fail the same way.
    cli_fails: bool = False


CASES = [
    Case("no_dockerignore", None, ("a", "d/b")),
    Case("star_extension", "*.log\n", ("a.log", "b.txt", "d/c.log")),
    Case("double_star_start", "**/cache\n", ("cache/x", "a/cache/y", "a/b/cache/z", "keep", "cachex")),
    Case("double_star_middle", "src/**/gen\n", ("src/gen/x", "src/a/b/gen/y", "src/a/keep", "lib/gen/z")),
    Case("double_star_end", "logs/**\n", ("logs/a", "logs/b/c", "logsx")),
    Case("double_star_zero_folders", "a/**/b\n", ("a/b", "a/x/b", "ab", "a/bb")),
    Case("double_star_everything_but_src", "**\n!src\n", ("src/x", "src/y/z", "other")),
    Case("suffix_fast_path_quirk", "**cache\n", ("mycache", "a/bcache", "cache2")),
    Case("prefix_fast_path_quirk", "build**\n", ("buildfile", "build2/x", "abuild")),
    Case("exception_under_excluded_folder", "docs\n!docs/keep.md\n", ("docs/keep.md", "docs/other.md", "top.md")),
    Case("exception_then_later_exclusion", "*.md\n!README*.md\nREADME-secret.md\n",
         ("README.md", "README-secret.md", "CHANGES.md", "main.py")),
    Case("exception_before_exclusion_is_lost", "!keep\n*\n", ("keep", "other")),
    Case("wildcard_exception_cannot_rescue", "docs\n!*/keep.md\n", ("docs/keep.md", "other/keep.md")),
    Case("double_star_exception_cannot_rescue", "**/node_modules\n!**/node_modules/keep\n",
         ("node_modules/keep", "a/node_modules/keep", "a/src")),
    Case("exception_for_missing_file", "a\n!a/missing\n", ("a/x", "a/y/", "b")),
    Case("walk_not_full_parent_check", "a\n!a/b\na\n", ("a/b", "a/c", "a/d/deep")),
    Case("reinclude_folder_then_exclude_inside", "logs\n!logs\nlogs/*.tmp\n", ("logs/a.tmp", "logs/b.txt")),
    Case("star_then_folder_exception", "*\n!src/**\n", ("src/a", "src/b/c", "other")),
    Case("question_mark", "file?.txt\n", ("file1.txt", "file10.txt", "file.txt")),
    Case("range", "[a-c]*.txt\n", ("a1.txt", "c.txt", "d.txt")),
    Case("caret_negation", "[^a]x\n", ("ax", "bx")),
    Case("bang_in_brackets_is_literal", "[!a]x\n", ("ax", "bx", "!x")),
    Case("escaped_star_and_question_mark", "star\\*\nq\\?\n", ("star*", "starx", "q?", "qx")),
    Case("backslash_d_is_a_digit", "num\\d\n", ("num7", "numd")),
    Case("escaped_bracket_inside_class", "[\\]]x\n", ("]x", "ax")),
    Case("posix_class", "v[[:digit:]]\n", ("v1", "vx")),
    Case("leading_slash", "/build\n", ("build/x", "sub/build/y")),
    Case("trailing_slash", "build/\n", ("build/x", "buildfile")),
    Case("dot_slash_and_dot_dot", "./dist\n./a/../tmp\n", ("dist/x", "tmp/y", "a/z")),
    Case("double_slash_and_dot", "x//y\nm/./n\n", ("x/y", "x/z", "m/n")),
    Case("dot_and_parent_patterns_match_nothing", ".\n../x\n/\n", ("x", "y/z")),
    Case("comments_and_blank_lines", "# comment\n\n   \n  a.txt  \n  #b.txt\n", ("a.txt", "#b.txt", "# comment")),
    Case("dotfiles", ".*\n!.keep\n", (".env", ".git/config", ".keep", "normal")),
    Case("names_with_spaces", "my file.txt\nsome dir\n  spaced name  \n",
         ("my file.txt", "some dir/x", "spaced name", "other file")),
    Case("unicode_names", "é*\n", ("école", "ecole")),
    Case("empty_folders", "gone\n", ("empty/", "full/x", "gone/", "nested/empty/")),
    Case("dockerfile_named", "Dockerfile\n*.txt\n", ("a.txt", "b")),
    Case("dockerignore_named", ".dockerignore\n", ("a",)),
    Case("everything", "*\n", ("a", "d/b")),
    Case("dockerfile_in_subfolder", "*.log\n", ("sub/x", "a.log"), dockerfile="sub/Dockerfile"),
    Case("dockerfile_in_excluded_subfolder", "build\n", ("build/other", "app"), dockerfile="build/Dockerfile"),
    Case("custom_dockerfile_name_excluded", "*.Dockerfile\n", ("a", "b.Dockerfile"), dockerfile="ci.Dockerfile"),
    Case("dockerfile_lost_by_the_cli_check", "**/c\n", ("a/b/c/x", "top"), dockerfile="a/b/c/Dockerfile",
         cli_fails=True),
    Case("context_is_a_subfolder", "y\n", ("app/x", "app/y", "outer/z"), context="app"),
    Case("nested_dockerignore_is_just_a_file", "*.tmp\n", ("sub/.dockerignore", "sub/a.tmp", "b.tmp")),
]


def _docker() -> str:
    docker = shutil.which("docker")
    assert docker, "the Docker CLI is the reference of this suite and is not on PATH"
    version = subprocess.run([docker, "version", "--format", "{{.Client.Version}}"], capture_output=True,
                             text=True, check=True, env=BUILD_ENV).stdout.strip()
    assert int(version.split(".")[0]) >= 25, f"the reference is Docker CLI >= 25, found {version} at {docker}"
    return docker


def _make_tree(root: Path, case: Case, copy_to: str) -> Path:
    for name in case.files:
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"content of {name}\n")
    context = root / case.context
    context.mkdir(parents=True, exist_ok=True)
    dockerfile = context / case.dockerfile
    dockerfile.parent.mkdir(parents=True, exist_ok=True)
    dockerfile.write_text(f"FROM {BASE_IMAGE}\nCOPY . /{copy_to}/\n")
    if case.ignore is not None:
        (context / ".dockerignore").write_text(case.ignore)
    return context


def _walk(context: Path) -> dict[str, bool]:
    """Every path of the context folder, relative, mapped to whether it is a folder."""
    found = {}
    for folder, dirs, files in os.walk(context):
        rel = Path(folder).relative_to(context).as_posix()
        for name in dirs:
            found[name if rel == "." else f"{rel}/{name}"] = True
        for name in files:
            found[name if rel == "." else f"{rel}/{name}"] = False
    return found


def _our_tar(context: Path, ignore: DockerIgnore, dockerfile: str) -> bytes:
    def as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for rel in _walk(context):
            if is_sent(rel, ignore, dockerfile):
                tar.add(context / rel, arcname=rel, recursive=False, filter=as_root)
    return buffer.getvalue()


def _build(docker: str, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([docker, "build", "-q", "--force-rm", *args], capture_output=True, env=BUILD_ENV,
                          timeout=120)


def _build_our_tar(context_tar: bytes, dockerfile: str) -> tuple[str | None, str]:
    """Send OUR context to the same engine through the console's engine wrapper (the CLI 28 refuses `-f` with a
    stdin context); returns the image id, or None and the error."""
    try:
        with Engine() as engine, engine.errors("Building a conformance case"):
            for message in engine.api.build(fileobj=io.BytesIO(context_tar), custom_context=True,
                                            dockerfile=dockerfile, rm=True, forcerm=True, decode=True):
                if "errorDetail" in message:
                    return None, message["errorDetail"].get("message", "")
                if "aux" in message and "ID" in message["aux"]:
                    return message["aux"]["ID"], ""
    except EngineError as exc:
        # A context without its Dockerfile is refused before any step runs.
        return None, str(exc)
    return None, "the engine did not say which image it built"


def _listing(docker: str, image_id: str, copy_to: str) -> set[str]:
    """What the COPY layer (the image's last) holds under /copy_to: files, and folders with a trailing '/'."""
    saved = subprocess.run([docker, "save", image_id], capture_output=True, check=True, timeout=120).stdout
    with tarfile.open(fileobj=io.BytesIO(saved)) as image:
        manifest = json.load(image.extractfile("manifest.json"))
        layer = image.extractfile(manifest[0]["Layers"][-1]).read()
    listing = set()
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        for member in tar.getmembers():
            name = member.name.rstrip("/")
            if name.startswith(copy_to + "/"):
                rel = name[len(copy_to) + 1:]
                listing.add(rel + "/" if member.isdir() else rel)
    return listing


def _predicted(walked: dict[str, bool], ignore: DockerIgnore, dockerfile: str) -> set[str]:
    """The module's own answer: what is sent, minus the build files the engine hides, plus implied folders."""
    sent = {rel for rel in walked if is_sent(rel, ignore, dockerfile)}
    visible = sent - dropped_by_engine(ignore, dockerfile)
    listing = {rel + "/" if walked[rel] else rel for rel in visible}
    for rel in sent:
        parts = rel.split("/")
        listing.update("/".join(parts[:i]) + "/" for i in range(1, len(parts)))
    return listing


@dataclass
class Outcome:
    cli: set[str] | None
    ours: set[str] | None
    predicted: set[str]
    cli_error: str
    our_error: str
    dockerfile_sent: bool


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Run every case once (in parallel: the engine does the work) and remove every image built, by id."""
    docker = _docker()
    copy_to = f"ctx-{uuid.uuid4().hex[:12]}"
    root = tmp_path_factory.mktemp("dockerignore-conformance")
    images: set[str] = set()

    def run(case: Case) -> Outcome:
        context = _make_tree(root / case.name, case, copy_to)
        ignore = DockerIgnore.parse(case.ignore or "")
        walked = _walk(context)
        cli = _build(docker, ["-f", str(context / case.dockerfile), str(context)])
        cli_id = cli.stdout.decode().strip() if cli.returncode == 0 else None
        our_id, our_error = _build_our_tar(_our_tar(context, ignore, case.dockerfile), case.dockerfile)
        images.update(image_id for image_id in (cli_id, our_id) if image_id)
        return Outcome(
            cli=_listing(docker, cli_id, copy_to) if cli_id else None,
            ours=_listing(docker, our_id, copy_to) if our_id else None,
            predicted=_predicted(walked, ignore, case.dockerfile),
            cli_error=cli.stderr.decode(errors="replace"),
            our_error=our_error,
            dockerfile_sent=is_sent(case.dockerfile, ignore, case.dockerfile),
        )

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = dict(zip([case.name for case in CASES], pool.map(run, CASES), strict=True))
        yield results
    finally:
        for image_id in images:
            subprocess.run([docker, "rmi", image_id], capture_output=True, timeout=120)


def test_it_has_enough_cases_with_unique_names():
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_it_sends_what_the_docker_cli_sends(case, outcomes):
    outcome = outcomes[case.name]
    if case.cli_fails:
        assert outcome.cli is None, "the CLI was expected to lose its Dockerfile"
        assert "Dockerfile" in outcome.cli_error
        assert outcome.ours is None
        assert "Cannot locate specified Dockerfile" in outcome.our_error
        assert not outcome.dockerfile_sent
        return
    assert outcome.cli is not None, outcome.cli_error
    assert outcome.ours is not None, outcome.our_error
    assert outcome.ours == outcome.cli
    assert outcome.predicted == outcome.cli


def test_it_refuses_what_the_cli_refuses(tmp_path):
    docker = _docker()
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\n")
    (tmp_path / ".dockerignore").write_text("ok\n[\n")
    cli = _build(docker, [str(tmp_path)])
    assert cli.returncode != 0
    assert "syntax error in pattern" in cli.stderr.decode()
    with pytest.raises(ValueError, match="line 2: syntax error in pattern"):
        DockerIgnore.parse("ok\n[\n")


# -- BuildKit: `<Dockerfile>.dockerignore` ---------------------------------------------------------------------

BUILDKIT_DOCKER = "/usr/bin/docker"
BUILDKIT_ENV = {**os.environ, "DOCKER_BUILDKIT": "1"}


@dataclass(frozen=True)
class BuildKitCase:
    """A tree (`files`, folders end with '/'), its ignore files (`ignores`: path in the tree -> text, None for a
    folder of that name), the Dockerfile (relative to `context`) and what COPY sees of the console's context
    beyond what it sees of the CLI's (`console_extra`: BuildKit reads the Dockerfile from its own transfer when
    the patterns exclude it, while the console's tar must carry it)."""

    name: str
    files: tuple[str, ...]
    ignores: tuple[tuple[str, str | None], ...]
    dockerfile: str = "Dockerfile"
    context: str = ""
    console_extra: tuple[str, ...] = ()


BUILDKIT_CASES = [
    BuildKitCase("root_dockerignore_only", ("a", "x.log", "d/y.log"), ((".dockerignore", "*.log\n"),)),
    BuildKitCase("specific_replaces_root", ("a", "x.log", "b"),
                 ((".dockerignore", "a\n"), ("Dockerfile.dockerignore", "*.log\n"))),
    BuildKitCase("empty_specific_replaces_root", ("a", "b"),
                 ((".dockerignore", "a\n"), ("Dockerfile.dockerignore", ""))),
    BuildKitCase("specific_folder_is_not_an_ignore_file", ("a", "b"),
                 ((".dockerignore", "a\n"), ("Dockerfile.dockerignore", None))),
    BuildKitCase("specific_hides_itself_and_the_root_file", ("a.tmp", "b"),
                 ((".dockerignore", "b\n"),
                  ("Dockerfile.dockerignore", "Dockerfile.dockerignore\n.dockerignore\n*.tmp\n"))),
    BuildKitCase("specific_with_exceptions", ("docs/keep.md", "docs/other.md", "README.md", "x.md"),
                 (("Dockerfile.dockerignore", "docs\n!docs/keep.md\n*.md\n!README.md\n"),)),
    BuildKitCase("dockerfile_in_subfolder", ("a", "b", "c", "sub/x"),
                 (("sub/Dockerfile.dockerignore", "b\n"), (".dockerignore", "a\n"), ("Dockerfile.dockerignore", "c\n")),
                 dockerfile="sub/Dockerfile"),
    BuildKitCase("dockerfile_in_subfolder_without_its_own", ("a", "b", "sub/x"),
                 ((".dockerignore", "a\n"), ("Dockerfile.dockerignore", "b\n")), dockerfile="sub/Dockerfile"),
    BuildKitCase("custom_name", ("docs/a", "src/b", "x"),
                 (("build/app.Dockerfile.dockerignore", "docs\n"), ("Dockerfile.dockerignore", "src\n"),
                  (".dockerignore", "x\n")), dockerfile="build/app.Dockerfile"),
    BuildKitCase("context_is_a_subfolder", ("app/keep", "app/tmp/x", "outer/z"),
                 (("app/Dockerfile.dockerignore", "tmp\n"), ("app/.dockerignore", "keep\n"),
                  ("Dockerfile.dockerignore", "*\n")), context="app"),
    BuildKitCase("dockerfile_excluded_by_the_specific_file", ("a",), (("Dockerfile.dockerignore", "Dockerfile\n"),),
                 console_extra=("Dockerfile",)),
    BuildKitCase("dockerfile_folder_excluded_by_the_specific_file", ("build/other", "app"),
                 (("build/Dockerfile.dockerignore", "build\n"),), dockerfile="build/Dockerfile",
                 console_extra=("build/", "build/Dockerfile")),
    # Not the specific file's doing: the classic CLI's rule (re-include a .dockerignore that lists itself, for
    # the classic engine to hide) stays for the root file, and BuildKit shows it to COPY.
    BuildKitCase("root_dockerignore_listing_itself", ("a.log", "b"), ((".dockerignore", ".dockerignore\n*.log\n"),),
                 console_extra=(".dockerignore",)),
]


def _buildkit_docker() -> str:
    version = subprocess.run([BUILDKIT_DOCKER, "version", "--format", "{{.Client.Version}}"], capture_output=True,
                             text=True, check=True, env=BUILDKIT_ENV).stdout.strip()
    assert version.startswith("20.10."), f"the BuildKit reference is Debian's CLI 20.10, found {version}"
    return BUILDKIT_DOCKER


def _make_buildkit_tree(root: Path, case: BuildKitCase, copy_to: str) -> Path:
    for name in case.files:
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"content of {name}\n")
    for name, text in case.ignores:
        path = root / name
        if text is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    context = root / case.context
    dockerfile = context / case.dockerfile
    dockerfile.parent.mkdir(parents=True, exist_ok=True)
    dockerfile.write_text(f"FROM {BASE_IMAGE}\nCOPY . /{copy_to}/\n")
    return context


def _tree_tar(root: Path) -> bytes:
    def as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for rel in sorted(_walk(root)):
            tar.add(root / rel, arcname=rel, recursive=False, filter=as_root)
    return buffer.getvalue()


def _buildkit_build(docker: str, args: list[str], stdin: bytes | None = None) -> str:
    result = subprocess.run([docker, "build", "-q", *args], input=stdin, capture_output=True, env=BUILDKIT_ENV,
                            timeout=180)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode().strip().splitlines()[-1]


@pytest.fixture
def buildkit_images():
    made: list[str] = []
    yield made
    for image_id in made:
        subprocess.run([BUILDKIT_DOCKER, "rmi", image_id], capture_output=True, timeout=120)


def test_it_has_buildkit_cases_with_unique_names():
    assert len(BUILDKIT_CASES) >= 12
    assert len({case.name for case in BUILDKIT_CASES}) == len(BUILDKIT_CASES)


@pytest.mark.parametrize("case", BUILDKIT_CASES, ids=[case.name for case in BUILDKIT_CASES])
def test_it_uses_the_ignore_file_buildkit_uses(case, repository, buildkit_images, tmp_path):
    docker = _buildkit_docker()
    copy_to = f"ctx-{uuid.uuid4().hex[:12]}"
    root = tmp_path / "tree"
    context = _make_buildkit_tree(root, case, copy_to)
    cli_id = _buildkit_build(docker, ["-f", str(context / case.dockerfile), str(context)])
    buildkit_images.append(cli_id)
    source = repositories.add_archive_source(repository, io.BytesIO(_tree_tar(root)), f"{case.name}.tar")
    path = case.context or "."
    ours = b"".join(stream_context(source, case.dockerfile, path))
    our_id = _buildkit_build(docker, ["-f", case.dockerfile, "-"], stdin=ours)
    buildkit_images.append(our_id)
    cli, mine = _listing(docker, cli_id, copy_to), _listing(docker, our_id, copy_to)
    assert mine - cli == set(case.console_extra)
    assert cli <= mine
    # The preview says what is streamed.
    plan = plan_context(source, case.dockerfile, path)
    assert {f.path for f in plan.included} == {rel for rel in mine if not rel.endswith("/")}
