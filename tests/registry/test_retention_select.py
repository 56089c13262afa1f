"""Retention's choice of tags and its byte count (registry/services/retention.py) and the storage reader
(registry/storage.py) on a folder laid out as Distribution lays it out: fast, no registry."""

from __future__ import annotations

import datetime
import hashlib
import json
import time
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from console.folders import folder_bytes
from registry import storage
from registry.services.retention import Rule, TagInfo, compile_pattern, compile_patterns, frees_bytes, select
from registry.storage import Image, StorageIndex

NOW = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=datetime.UTC)


def days_ago(days: float) -> datetime.datetime:
    return NOW - datetime.timedelta(days=days)


def rule(keep_last=None, keep_matching=(), keep_younger_than=None, protect=()) -> Rule:
    return Rule(keep_last, tuple(map(compile_pattern, keep_matching)), keep_younger_than,
                tuple(map(compile_pattern, protect)))


TAGS = [
    TagInfo("latest", "sha256:" + "a" * 64, days_ago(1)),
    TagInfo("v3", "sha256:" + "a" * 64, days_ago(1)),
    TagInfo("v2", "sha256:" + "b" * 64, days_ago(10)),
    TagInfo("v1", "sha256:" + "c" * 64, days_ago(40)),
    TagInfo("prod", "sha256:" + "c" * 64, days_ago(40)),
    TagInfo("old", "sha256:" + "d" * 64, days_ago(400)),
    TagInfo("unknown", "sha256:" + "e" * 64, None),
]


def test_keep_last_keeps_the_newest_by_the_images_date():
    chosen = select(TAGS, rule(keep_last=2), NOW)
    # latest and v3 are the newest two (one image); v1 shares its image with nothing kept, prod neither.
    assert chosen.delete == ["old", "prod", "v1", "v2"]
    assert chosen.reasons["v3"] == "among the newest 2" and chosen.reasons["latest"] == "among the newest 2"
    assert chosen.reasons["unknown"] == "its image's date is unknown"


def test_protect_keeps_a_tag_and_every_tag_on_its_image():
    chosen = select(TAGS, rule(keep_last=1, protect=["prod"]), NOW)
    assert chosen.reasons["prod"] == "protected (prod)"
    assert chosen.reasons["v1"] == "the same image as kept tag prod"
    assert chosen.delete == ["old", "v2"]
    assert set(chosen.delete).isdisjoint(chosen.keep)
    assert sorted(chosen.delete + chosen.keep) == sorted(tag.name for tag in TAGS)


def test_keep_younger_than_counts_days():
    chosen = select(TAGS, rule(keep_younger_than=30), NOW)
    assert chosen.delete == ["old", "prod", "v1"]
    assert chosen.reasons["v2"] == "younger than 30 days"


def test_keep_matching_takes_globs_and_anchored_regular_expressions():
    chosen = select(TAGS, rule(keep_last=0, keep_matching=["v?", r"re:ol."]), NOW)
    # latest and prod are on the images of v3 and v1.
    assert chosen.delete == []
    assert chosen.reasons["old"] == "matches re:ol." and chosen.reasons["v2"] == "matches v?"
    assert chosen.reasons["latest"] == "the same image as kept tag v3"
    assert select(TAGS, rule(keep_last=0, keep_matching=["v1", "re:v[23]"]), NOW).delete == ["old"]
    # A regular expression matches the whole tag: `v` alone matches no tag.
    assert select(TAGS, rule(keep_last=0, keep_matching=["re:v"]), NOW).delete == [
        "latest", "old", "prod", "v1", "v2", "v3"]


def test_a_glob_is_literal_but_for_its_wildcards():
    assert compile_pattern("v1.*").matches("v1.2") and not compile_pattern("v1.*").matches("v1x2")
    assert compile_pattern("a+b").matches("a+b") and not compile_pattern("a+b").matches("aab")


def test_a_rule_without_keep_rules_keeps_everything_even_with_protect():
    chosen = select(TAGS, rule(protect=["latest"]), NOW)
    assert chosen.delete == [] and len(chosen.keep) == len(TAGS)
    assert "retention is off" in chosen.reasons["old"]


@pytest.mark.parametrize("value", ["", "re:", "re:(", "re:a{1001}" * 20, "x" * 300])
def test_bad_patterns_are_refused_naming_the_field(value):
    with pytest.raises(ValidationError) as caught:
        compile_patterns([value], "keep_matching")
    assert "keep_matching" in caught.value.message_dict


def test_patterns_must_be_a_short_list_of_strings():
    with pytest.raises(ValidationError):
        compile_patterns("latest", "protect")
    with pytest.raises(ValidationError):
        compile_patterns(["a"] * 51, "protect")


@pytest.mark.parametrize("pattern", ["re:(a+)+$", "re:(a|a)*b", "*a*a*a*a*a*a*a*a*a*ab", "re:(.*a){20}"])
def test_a_pathological_pattern_answers_at_once(pattern):
    compiled = compile_pattern(pattern)
    started = time.perf_counter()
    for _ in range(200):
        assert not compiled.matches("a" * 127 + "!")
    assert time.perf_counter() - started < 0.5


# -- bytes ------------------------------------------------------------------------------------------------------


def _index() -> StorageIndex:
    def image(name, *blobs):
        return Image(f"sha256:{name * 64}", frozenset(blobs))

    return StorageIndex(
        tags={"alice/app": {"v1": "sha256:" + "1" * 64, "v2": "sha256:" + "2" * 64, "v3": "sha256:" + "3" * 64},
              "bob/other": {"x": "sha256:" + "4" * 64}},
        images={i.digest: i for i in (image("1", "cfg1", "base", "l1"), image("2", "cfg2", "base", "l2"),
                                      image("3", "cfg3", "base", "l3"), image("4", "cfg4", "l1"))},
        sizes={"cfg1": 1, "cfg2": 2, "cfg3": 3, "cfg4": 4, "base": 1000, "l1": 100, "l2": 200, "l3": 300},
    )


def test_frees_counts_only_blobs_no_remaining_tag_references():
    index = _index()
    # v1's l1 is also in bob's image and base in v2 and v3: only its config is freed.
    assert frees_bytes(index, "alice/app", ["v1"]) == 1
    assert frees_bytes(index, "alice/app", ["v2"]) == 202
    assert frees_bytes(index, "alice/app", ["v1", "v2"]) == 1 + 202
    # Every tag of the repository: base too, l1 still bob's.
    assert frees_bytes(index, "alice/app", ["v1", "v2", "v3"]) == 1 + 202 + 303 + 1000
    assert frees_bytes(index, "alice/app", []) == 0


# -- the storage folder ------------------------------------------------------------------------------------------


def _blob(root: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    folder = root / storage.V2 / "blobs" / "sha256" / digest[:2] / digest
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").write_bytes(data)
    return f"sha256:{digest}"


def _tag(root: Path, repository: str, tag: str, digest: str) -> None:
    folder = root / storage.V2 / "repositories" / repository / "_manifests" / "tags" / tag / "current"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "link").write_text(digest)


def test_the_reader_finds_nested_repositories_their_tags_blobs_and_dates(tmp_path):
    root = tmp_path / "data"
    config = _blob(root, json.dumps({"created": "2026-11-01T10:00:00Z"}).encode())
    layer = _blob(root, b"x" * 1234)
    manifest = _blob(root, json.dumps({"schemaVersion": 2, "config": {"digest": config},
                                       "layers": [{"digest": layer}]}).encode())
    index_digest = _blob(root, json.dumps({"schemaVersion": 2, "manifests": [{"digest": manifest}]}).encode())
    _tag(root, "alice/app", "v1", manifest)
    _tag(root, "alice/app/sub", "multi", index_digest)
    _tag(root, "alice/app", "broken", "not a digest")
    # A symbolic link in the folder is never followed.
    (root / storage.V2 / "repositories" / "alice" / "evil").symlink_to("/")
    index = storage.read_index(tmp_path)
    assert index.tags == {"alice/app": {"v1": manifest}, "alice/app/sub": {"multi": index_digest}}
    image = index.images[manifest]
    assert image.blobs == {config, layer} and image.created == datetime.datetime(2026, 11, 1, 10, tzinfo=datetime.UTC)
    assert index.images[index_digest].blobs == {config, layer}
    assert index.sizes[layer] == 1234
    assert folder_bytes(root) > 1234
