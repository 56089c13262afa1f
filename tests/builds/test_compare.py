"""The comparison of two images (builds/services/compare.py) on crafted layers, files, config and packages: no
engine, no database for the diff logic itself."""

from __future__ import annotations

from builds.models import Image, Layer
from builds.services.compare import (
    compare_config,
    compare_files,
    compare_layer_files,
    compare_layers,
    compare_packages,
    env_dict,
    file_entry,
    merged_files,
)

CONFIG = {"env": ["PATH=/bin", "MODE=prod"], "cmd": ["sh"], "entrypoint": None, "user": "", "workdir": "",
          "exposed_ports": ["80/tcp"], "volumes": [], "healthcheck": None}


def layer(index: int, diff_id: str = "", files: list[dict] | None = None, empty: bool = False,
          created_by: str = "", size: int = 0) -> Layer:
    return Layer(index=index, diff_id=diff_id, files=files, empty_layer=empty, created_by=created_by, size=size)


def added(path: str, kind: str = "file", size: int = 0, mode: int | None = 0o644, link: str | None = None,
          change: str = "added") -> dict:
    row = {"path": path, "change": change, "type": kind, "size": size}
    if mode is not None:
        row["mode"] = mode
    if link is not None:
        row["link"] = link
    return row


def removed(path: str, kind: str = "file", size: int = 0) -> dict:
    return {"path": path, "change": "removed", "type": kind, "size": size}


# -- layers


def test_layers_share_the_common_prefix_by_diff_id_and_the_rest_is_added_or_removed():
    base = [layer(0, "sha256:a", created_by="/bin/sh -c #(nop) ADD file:x in /", size=100),
            layer(1, created_by="/bin/sh -c #(nop)  ENV A=1", empty=True),
            layer(2, "sha256:b", created_by="/bin/sh -c make", size=10),
            layer(3, "sha256:c", created_by="/bin/sh -c make install", size=5)]
    head = [layer(0, "sha256:a", created_by="/bin/sh -c #(nop) ADD file:x in /", size=100),
            layer(1, "sha256:d", created_by="RUN /bin/sh -c echo hi # buildkit", size=7),
            layer(2, "sha256:c", created_by="RUN /bin/sh -c make install # buildkit", size=5)]

    diff = compare_layers(base, head)

    assert [row["diff_id"] for row in diff["shared"]] == ["sha256:a"]
    assert [(row["index"], row["instruction"], row["size"]) for row in diff["removed"]] == [
        (2, "RUN make", 10), (3, "RUN make install", 5)]
    # The same bytes after a different layer are another layer of the image (its chain id differs).
    assert [(row["index"], row["instruction"]) for row in diff["added"]] == [
        (1, "RUN echo hi"), (2, "RUN make install")]
    assert diff["added"][0]["created_by"] == "RUN /bin/sh -c echo hi # buildkit"
    assert (diff["shared_size"], diff["added_size"], diff["removed_size"]) == (100, 12, 15)


def test_identical_layers_are_all_shared_and_config_only_entries_are_not_layers():
    rows = [layer(0, "sha256:a"), layer(1, empty=True, created_by="/bin/sh -c #(nop)  CMD [\"sh\"]")]
    diff = compare_layers(rows, rows)
    assert [row["index"] for row in diff["shared"]] == [0]
    assert diff["added"] == diff["removed"] == []


def test_a_layer_without_a_diff_id_is_never_taken_for_shared():
    diff = compare_layers([layer(0, "")], [layer(0, "")])
    assert diff["shared"] == [] and len(diff["added"]) == len(diff["removed"]) == 1


# -- config


def image(config: dict | None = None, labels: dict | None = None) -> Image:
    return Image(config=CONFIG if config is None else config, labels=labels or {})


def test_config_lists_only_what_differs_with_both_values():
    head_config = {**CONFIG, "env": ["PATH=/bin", "MODE=dev", "NEW="], "cmd": ["sh", "-c", "run"],
                   "user": "app", "exposed_ports": ["8080/tcp", "443/tcp"]}
    diff = compare_config(image(labels={"team": "a", "old": "1"}),
                          image(head_config, labels={"team": "b", "new": "2"}))

    assert diff["env"] == [{"name": "MODE", "base": "prod", "head": "dev"},
                           {"name": "NEW", "base": None, "head": ""}]
    assert diff["cmd"] == {"base": ["sh"], "head": ["sh", "-c", "run"]}
    assert diff["entrypoint"] is None
    assert diff["user"] == {"base": "", "head": "app"}
    assert diff["ports"] == {"added": ["443/tcp", "8080/tcp"], "removed": ["80/tcp"]}
    assert diff["labels"] == [{"name": "new", "base": None, "head": "2"}, {"name": "old", "base": "1", "head": None},
                              {"name": "team", "base": "a", "head": "b"}]


def test_the_same_config_differs_in_nothing():
    assert compare_config(image(labels={"a": "1"}), image(labels={"a": "1"})) == {
        "env": [], "cmd": None, "entrypoint": None, "user": None, "ports": None, "labels": []}


def test_an_empty_record_config_compares_with_a_full_one():
    diff = compare_config(image({}), image())
    assert diff["cmd"] == {"base": None, "head": ["sh"]}
    assert [row["name"] for row in diff["env"]] == ["MODE", "PATH"]


def test_env_reads_names_as_the_engine_does():
    assert env_dict(["A=1", "B", "C=x=y", "A=2"]) == {"A": "2", "B": "", "C": "x=y"}


# -- files


def test_the_merged_view_applies_each_layers_changes_in_order():
    layers = [
        layer(0, "sha256:a", [added("etc", "dir", mode=0o755), added("etc/conf", size=5), added("tmp/x", size=3)]),
        layer(1, empty=True, files=[]),
        layer(2, "sha256:b", [added("etc/conf", size=7, change="modified"), removed("tmp/x", size=3),
                              added("bin/sh", "symlink", link="busybox", mode=0o777)]),
    ]
    assert merged_files(layers) == {
        "etc": file_entry("dir", 0, 0o755), "etc/conf": file_entry("file", 7, 0o644),
        "bin/sh": file_entry("symlink", 0, 0o777, "busybox")}


def test_over_shared_layers_only_the_paths_the_other_layers_touch_are_compared_and_the_figures_are_exact():
    shared = [layer(0, "sha256:a", [added("etc", "dir"), added("etc/conf", size=5), added("big", size=1000),
                                    added("tmp/x", size=3)]),
              layer(1, "sha256:b", [removed("tmp/x", size=3), added("tmp/y", size=2)])]
    base_own = [layer(2, "sha256:c", [added("etc/conf", size=6, change="modified"), removed("tmp/y", size=2)])]
    head_own = [layer(2, "sha256:d", [added("etc/conf", size=9, change="modified"), added("tmp/x", size=4)])]

    diff = compare_layer_files([*shared, *base_own], head_own, shared=2)
    whole = compare_files(merged_files([*shared, *base_own]), merged_files([*shared, *head_own]))

    assert diff == whole
    assert [row["path"] for row in diff["added"]] == ["tmp/x", "tmp/y"]
    assert [(row["path"], row["from"]["size"], row["to"]["size"]) for row in diff["changed"]] == [("etc/conf", 6, 9)]
    assert diff["removed"] == [] and diff["bytes"] == (9 + 4 + 2) - 6


def test_files_added_removed_and_changed_by_size_mode_link_or_type_and_the_net_bytes():
    base = {"same": file_entry("file", 5, 0o644), "gone": file_entry("file", 10, 0o644),
            "grows": file_entry("file", 1, 0o644), "chmod": file_entry("file", 2, 0o644),
            "link": file_entry("symlink", 0, 0o777, "a"), "kind": file_entry("dir", 0, 0o755)}
    head = {"same": file_entry("file", 5, 0o644), "new": file_entry("file", 4, 0o600),
            "grows": file_entry("file", 9, 0o644), "chmod": file_entry("file", 2, 0o755),
            "link": file_entry("symlink", 0, 0o777, "b"), "kind": file_entry("file", 0, 0o755)}

    diff = compare_files(base, head)

    assert diff["known"] is True and diff["truncated"] is False
    assert diff["added"] == [{"path": "new", "type": "file", "size": 4, "mode": 0o600, "link": None}]
    assert diff["removed"] == [{"path": "gone", "type": "file", "size": 10, "mode": 0o644, "link": None}]
    assert [row["path"] for row in diff["changed"]] == ["chmod", "grows", "kind", "link"]
    assert diff["changed"][0] == {"path": "chmod", "from": {"type": "file", "size": 2, "mode": 0o644, "link": None},
                                  "to": {"type": "file", "size": 2, "mode": 0o755, "link": None}}
    assert diff["counts"] == {"added": 1, "removed": 1, "changed": 4}
    assert diff["bytes"] == (5 + 4 + 9 + 2) - (5 + 10 + 1 + 2)


def test_a_mode_or_link_an_older_analysis_did_not_record_is_no_difference():
    diff = compare_files({"a": file_entry("file", 1), "l": file_entry("symlink", 0)},
                         {"a": file_entry("file", 1, 0o755), "l": file_entry("symlink", 0, 0o777, "x")})
    assert diff["changed"] == [] and diff["counts"]["changed"] == 0


def test_the_lists_are_bounded_and_say_so_while_the_counts_are_complete():
    head = {f"f{n:03}": file_entry("file", 1) for n in range(30)}
    diff = compare_files({}, head, limit=10)
    assert [row["path"] for row in diff["added"]] == [f"f{n:03}" for n in range(10)]
    assert diff["counts"]["added"] == 30 and diff["truncated"] is True and diff["bytes"] == 30


# -- packages


def test_packages_compare_by_ecosystem_and_name():
    base = [("deb", "libc6", "2.36-9"), ("deb", "curl", "7.88"), ("pypi", "requests", "2.31.0"),
            ("npm", "lodash", "4.17.20"), ("npm", "lodash", "3.10.1")]
    head = [("deb", "libc6", "2.36-9+deb12u4"), ("pypi", "requests", "2.31.0"), ("apk", "curl", "8.5.0-r0"),
            ("npm", "lodash", "4.17.21"), ("npm", "lodash", "3.10.1")]

    diff = compare_packages(base, head)

    assert diff["added"] == [{"ecosystem": "apk", "name": "curl", "version": "8.5.0-r0"}]
    assert diff["removed"] == [{"ecosystem": "deb", "name": "curl", "version": "7.88"}]
    assert diff["changed"] == [
        {"ecosystem": "deb", "name": "libc6", "from": "2.36-9", "to": "2.36-9+deb12u4"},
        {"ecosystem": "npm", "name": "lodash", "from": "3.10.1, 4.17.20", "to": "3.10.1, 4.17.21"}]


def test_the_same_packages_differ_in_nothing():
    rows = [("deb", "libc6", "2.36-9")]
    assert compare_packages(rows, rows) == {"known": True, "detail": "", "added": [], "removed": [], "changed": []}
