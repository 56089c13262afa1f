"""One reading of a Dockerfile (builds/dockerfile/) behind build options, scheduling and lint: line
continuations, empty and comment lines inside them, and the `# escape=` directive are read the same way by each."""

from __future__ import annotations

import pytest

from builds import dockerfile
from builds.dockerfile import lint
from builds.services import nodes, options

# The same three stages written four ways Docker reads alike.
WRITTEN = {
    "on one line each": (
        "FROM busybox:1.36 AS base\n"
        "RUN echo one && echo two\n"
        "FROM registry:5000/team/app AS app\n"
        "FROM base AS final\n"
    ),
    "continued with a backslash": (
        "FROM busybox:1.36 \\\n  AS base\n"
        "RUN echo one \\\n  && echo two\n"
        "FROM \\\n  registry:5000/team/app \\\n  AS app\n"
        "FROM base AS final\n"
    ),
    "with empty and comment lines inside a continuation": (
        "FROM busybox:1.36 \\\n\n  # the alias\n  AS base\n"
        "RUN echo one \\\n\n  && echo two\n"
        "FROM registry:5000/team/app \\\n   \n  AS app\n"
        "FROM base AS final\n"
    ),
    "continued with the escape directive's backtick": (
        "# escape=`\n"
        "FROM busybox:1.36 `\n  AS base\n"
        "RUN echo one `\n\n  && echo two\n"
        "FROM registry:5000/team/app `\n  AS app\n"
        "FROM base AS final\n"
    ),
}


@pytest.mark.parametrize("how", sorted(WRITTEN))
def test_the_reader_finds_the_same_stages_and_images_however_they_are_continued(how):
    parsed = dockerfile.parse(WRITTEN[how])
    assert parsed.stages == ["base", "app", "final"]
    assert parsed.base_images == ["busybox:1.36", "registry:5000/team/app"]
    assert [instruction["instruction"] for instruction in parsed.instructions] == ["FROM", "RUN", "FROM", "FROM"]


@pytest.mark.parametrize("how", sorted(WRITTEN))
def test_build_options_see_the_same_stages(how):
    assert options.stages_of(WRITTEN[how]) == ["base", "app", "final"]


@pytest.mark.parametrize("how", sorted(WRITTEN))
def test_scheduling_sees_the_same_base_images(how):
    assert nodes.base_images_of(WRITTEN[how]) == ["busybox:1.36", "registry:5000/team/app:latest"]


@pytest.mark.parametrize("how", sorted(WRITTEN))
def test_lint_sees_the_same_instructions_and_stages(how):
    instructions = lint.parse_dockerfile(WRITTEN[how])
    assert [instruction.keyword for instruction in instructions] == ["FROM", "RUN", "FROM", "FROM"]
    assert " ".join(instructions[1].arguments.split()) == "echo one && echo two"
    stages = lint.stages(instructions)
    assert [(stage.image, stage.alias) for stage in stages] == [
        ("busybox:1.36", "base"), ("registry:5000/team/app", "app"), ("base", "final")
    ]
    # Each instruction is found at its first line, wherever its continuation ends.
    first_lines = [instruction.line for instruction in instructions]
    assert first_lines == [item["startline"] + 1 for item in dockerfile.parse(WRITTEN[how]).instructions]


def test_a_backslash_is_no_continuation_under_the_backtick_escape():
    text = "# escape=`\nFROM busybox:1.36 AS base\nRUN dir C:\\\nFROM base AS final\n"
    assert options.stages_of(text) == ["base", "final"]
    assert [i.keyword for i in lint.parse_dockerfile(text)] == ["FROM", "RUN", "FROM"]


def test_an_escape_directive_after_an_instruction_is_a_comment():
    text = "FROM busybox:1.36 AS base\n# escape=`\nRUN echo one `\nFROM base AS final\n"
    assert dockerfile.escape_of(text) == "\\"
    assert options.stages_of(text) == ["base", "final"]


def test_names_made_from_args_are_left_to_the_build():
    text = "ARG V=1\nFROM busybox:$V AS base\nCOPY --from=img:$V /a /b\nFROM busybox:1.36\n"
    assert nodes.base_images_of(text) == ["busybox:1.36"]
    uses = dockerfile.parse(text).image_uses
    assert [(use.reference, use.written) for use in uses] == [
        ("busybox:1", "busybox:$V"), ("img:1", "img:$V"), ("busybox:1.36", "busybox:1.36")
    ]


def test_a_target_is_checked_against_continued_stage_names():
    text = WRITTEN["with empty and comment lines inside a continuation"]
    assert "app" in options.stages_of(text)
    assert "two" not in options.stages_of(text)


def test_hadolint_gets_a_dotted_host_even_on_a_continuation_line():
    text = "FROM --platform=linux/amd64 \\\n  localhost:5000/app:1 AS base\nRUN echo localhost:5000/app\n"
    safe = lint._hadolint_safe(text)
    assert safe == "FROM --platform=linux/amd64 \\\n  localhost.local:5000/app:1 AS base\nRUN echo localhost:5000/app\n"
    assert lint._hadolint_safe("FROM registry.example:5000/app:1\n") == "FROM registry.example:5000/app:1\n"


def test_line_numbers_in_a_rewritten_dockerfile_stay_the_users():
    text = "FROM busybox:1.36 \\\n\n  AS base\nRUN echo hi\n"
    rewritten = dockerfile.rewrite_image_uses(text, {}, {"busybox:1.36": "sha256:" + "a" * 64})
    assert rewritten.splitlines()[0] == "FROM sha256:" + "a" * 64 + " AS base"
    assert rewritten.splitlines()[3] == "RUN echo hi"


def test_it_reads_the_secrets_run_steps_mount_and_the_args_it_declares():
    parsed = dockerfile.parse("ARG GLOBAL\nFROM busybox\nARG LOCAL=1\n"
                              "RUN --mount=type=secret,id=TOKEN cat /run/secrets/TOKEN\n"
                              "RUN --mount=type=secret,target=/etc/OTHER cat /etc/OTHER\n"
                              "RUN --mount=type=cache,target=/cache true\n")
    assert parsed.secret_mounts == {"TOKEN", "OTHER"}
    assert parsed.declared_args == {"GLOBAL", "LOCAL"}


def test_secret_mounts_are_given_their_ids_at_the_path_they_mounted_and_lines_keep_their_numbers():
    text = ("FROM busybox\nRUN --mount=type=secret,id=TOKEN \\\n    cat /run/secrets/TOKEN\n"
            "RUN --mount=type=secret,target=/x/OTHER,required=true cat /x/OTHER\n"
            "RUN --mount=type=secret,id=UNKNOWN cat /run/secrets/UNKNOWN\nRUN echo --mount=type=secret,id=TOKEN\n")
    sent = dockerfile.rewrite_secret_mounts(text, {}, {"TOKEN": "TOKEN-ab12", "OTHER": "OTHER-cd34"})
    assert sent.splitlines() == [
        "FROM busybox",
        "RUN --mount=type=secret,id=TOKEN-ab12,target=/run/secrets/TOKEN cat /run/secrets/TOKEN",
        "",
        "RUN --mount=type=secret,required=true,id=OTHER-cd34,target=/x/OTHER cat /x/OTHER",
        "RUN --mount=type=secret,id=UNKNOWN cat /run/secrets/UNKNOWN",
        "RUN echo --mount=type=secret,id=TOKEN",
    ]


def test_a_syntax_directive_becomes_a_comment_and_only_among_the_leading_directives():
    text = "# syntax=docker/dockerfile:1\n# escape=\\\nFROM busybox\n# syntax=not/a-directive\n"
    sent = dockerfile.without_syntax_directive(text)
    assert sent.splitlines()[0].startswith("# (syntax directive ignored")
    assert sent.splitlines()[1:] == text.splitlines()[1:]
