"""Hostile `.dockerignore` patterns cost time linear in the path: no pattern can freeze a web process.

The patterns below make a backtracking engine (Python's `re`, which builds/sources/dockerignore.py used before) run for
minutes on one path a few thousand characters long: `*a*a*a*a*a*a*a*a*a*ab` against "aaa...a" took 0.6 s for
a 30-character path and did not finish in two minutes for 3,000 characters. Go's regexp, which the CLI uses, is
RE2 and answers at once; so must the console.
"""

from __future__ import annotations

import io
import time

import pytest

from builds.services import repositories
from builds.sources.dockerignore import MAX_PATTERN_BYTES, DockerIgnore, DockerIgnoreError, is_sent
from tests.builds.archive_factory import tar_bytes

# Generous: RE2 answers these in well under 10 ms; the old code needed minutes.
BOUND_SECONDS = 0.5
LONG = "a" * 3000

PATHOLOGICAL = {
    "nested stars": ("*a*a*a*a*a*a*a*a*a*ab", LONG),
    "stars over a class": ("[a-z]*[a-z]*[a-z]*[a-z]*[a-z]*[a-z]*[a-z]*[a-z]*!", LONG),
    "question marks and stars": ("?*?*?*?*?*?*?*?*?*?*?*!", LONG),
    "double stars over folders": ("**/**/**/**/**/**/**/**/**/**/x", "a/" * 1500 + "y"),
    "double star then stars": ("**/a*a*a*a*a*a*a*a*b", "a/" * 10 + "a" * 3000),
    "an exception of nested stars": ("!*a*a*a*a*a*a*a*a*a*ab", LONG),
}


@pytest.fixture
def repository(owner):
    return repositories.create_repository(owner, "redos", "hostile .dockerignore")


def timed(call) -> tuple[object, float]:
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


@pytest.mark.parametrize("case", sorted(PATHOLOGICAL))
def test_a_pathological_pattern_matches_a_long_path_at_once(case):
    pattern, path = PATHOLOGICAL[case]
    ignore = DockerIgnore.parse(f"{pattern}\n")
    matched, seconds = timed(lambda: ignore.patterns[0].matches(path))
    assert matched is False
    assert seconds < BOUND_SECONDS, f"{case}: {seconds:.2f}s"


def test_the_walk_stays_fast_on_a_deep_path_with_the_redos_pattern():
    ignore = DockerIgnore.parse("*a*a*a*a*a*a*a*a*a*ab\n**/**/**/**/**/**/**/**/x\n!**/*a*a*a*a*a*a*a*a*c\n")
    deep = "/".join(["a" * 100] * 30) + "/" + "a" * 900
    sent, seconds = timed(lambda: is_sent(deep, ignore))
    assert sent is True
    assert seconds < BOUND_SECONDS


def test_a_path_of_thousands_of_folders_is_decided_without_recursion():
    ignore = DockerIgnore.parse("*a*a*a*a*a*a*a*a*a*ab\n**/[z]\n")
    path = "a/" * 2000 + "z"
    excluded, seconds = timed(lambda: ignore.excludes(path))
    assert excluded is True
    assert seconds < BOUND_SECONDS


def test_the_patterns_still_match_what_they_should():
    ignore = DockerIgnore.parse("*a*a*a*a*a*a*a*a*a*ab\n")
    assert ignore.patterns[0].matches("a" * 3000 + "b")
    assert not ignore.patterns[0].matches("a" * 3000 + "/b")


def test_a_pattern_longer_than_any_path_is_refused_clearly():
    with pytest.raises(DockerIgnoreError, match=f"at most {MAX_PATTERN_BYTES:,} are allowed") as caught:
        DockerIgnore.parse("ok\n" + "*a" * 3000 + "\n")
    assert caught.value.line == 2
    assert DockerIgnore.parse("*a" * (MAX_PATTERN_BYTES // 2) + "\n").patterns


def test_the_context_preview_answers_at_once_for_a_redos_dockerignore(owner_api, repository):
    # Through the service and the API: a stored source with the pattern and a file with a long name.
    long_name = "/".join(["a" * 200] * 15)
    tree = [("Dockerfile", b"FROM busybox:1.35.0\n"), (".dockerignore", b"*a*a*a*a*a*a*a*a*a*ab\n"), (long_name, b"x")]
    source = repositories.add_archive_source(repository, io.BytesIO(tar_bytes(tree, "gz")), "redos.tgz")
    response, seconds = timed(lambda: owner_api.get(f"/api/v1/sources/{source.pk}/context/"))
    assert response.status_code == 200
    assert long_name in response.json()["included"]
    assert seconds < 5 * BOUND_SECONDS
