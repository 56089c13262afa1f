"""Where BuildKit's steps are in the Dockerfile: each stage's steps (`[stage i/n]`) numbered in the Dockerfile's
order, a FROM another stage making none, and the line a failed step ran (for its last good layer)."""

from __future__ import annotations

from builds.runner.buildkit import stage_index, stage_layout, step_line, step_number

DOCKERFILE = ("ARG V=1\n"                      # 0: a global ARG is no step
              "FROM busybox:1.35.0 AS base\n"  # 1: base 1/2
              "ENV A=1\n"                      # 2: config only
              "RUN echo one\n"                 # 3: base 2/2
              "FROM busybox:1.35.0\n"          # 4: stage-1 1/2 (unnamed)
              "COPY x /x\n"                    # 5: stage-1 2/2
              "FROM base\n"                    # 6: no step: an earlier stage
              "WORKDIR /app\n"                 # 7: stage-2 1/2
              "RUN echo two\n")                # 8: stage-2 2/2


def test_the_layout_lists_each_stages_steps_as_buildkit_shows_them():
    names, lines = stage_layout(DOCKERFILE, {})
    assert names == ["base", "#1", "#2"]
    assert lines == [[1, 3], [4, 5], [7, 8]]


def test_stages_are_found_by_name_by_stage_n_and_alone_when_there_is_one():
    names = ["base", "#1", "#2"]
    assert (stage_index(names, "base"), stage_index(names, "stage-1"), stage_index(names, "stage-2")) == (0, 1, 2)
    assert stage_index(names, None) is None and stage_index(["#0"], None) == 0
    assert stage_index(names, "nope") is None


def test_steps_are_numbered_in_the_dockerfiles_order_and_map_to_their_lines():
    layout = stage_layout(DOCKERFILE, {})
    assert [step_number(layout, stage, step) for stage, step in
            [("base", 1), ("base", 2), ("stage-1", 1), ("stage-1", 2), ("stage-2", 1), ("stage-2", 2)]] == \
        [1, 2, 3, 4, 5, 6]
    assert step_line(layout, "stage-2", 2) == 8 and step_line(layout, "base", 2) == 3
    assert step_line(layout, "stage-2", 3) is None and step_number(layout, "nope", 1) is None
    single = stage_layout("FROM busybox\nRUN a\nRUN b\n", {})
    assert step_number(single, None, 3) == 3 and step_line(single, None, 2) == 1
