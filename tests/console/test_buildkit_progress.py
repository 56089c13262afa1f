"""The parser of BuildKit's plain progress output, on outputs captured from the engine here (Docker CLI 20.10,
the engine's BuildKit): tests/console/buildkit_progress/*.txt, each the CLI's whole output of one build."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.engine.buildkit import (
    MAX_LINE,
    BuildError,
    Message,
    PlainProgressParser,
    VertexCached,
    VertexCanceled,
    VertexDone,
    VertexError,
    VertexLog,
    VertexStarted,
    VertexStatus,
    split_lines,
)

FIXTURES = Path(__file__).parent / "buildkit_progress"


def parse_bytes(data: bytes, chunk: int = 1000) -> list:
    parser = PlainProgressParser()
    events = []
    for line in split_lines(data[index:index + chunk] for index in range(0, len(data), chunk)):
        events += parser.feed(line)
    return events + parser.close()


def parse(name: str, chunk: int = 1000) -> list:
    return parse_bytes((FIXTURES / name).read_bytes(), chunk)


def parse_lines(*lines: str) -> list:
    parser = PlainProgressParser()
    events = []
    for line in lines:
        events += parser.feed(line)
    return events + parser.close()


def of(events: list, vertex: int) -> list:
    return [event for event in events if getattr(event, "vertex", None) == vertex]


def started(events: list) -> dict[int, VertexStarted]:
    return {event.vertex: event for event in events if isinstance(event, VertexStarted)}


def logs(events: list, vertex: int) -> list[str]:
    return [event.text for event in of(events, vertex) if isinstance(event, VertexLog)]


def test_it_reads_a_successful_build():
    events = parse("success.txt")
    steps = started(events)
    assert steps[1] == VertexStarted(1, "[internal] load remote build context", internal=True)
    assert steps[2] == VertexStarted(2, "copy /context /")
    assert steps[4] == VertexStarted(4, "[1/3] FROM docker.io/library/busybox:1.35.0", stage=None, step=1, total=3,
                                     instruction="FROM docker.io/library/busybox:1.35.0")
    assert steps[5].instruction == "RUN echo hello-bkh-$RANDOM && echo second line"
    assert (steps[5].step, steps[5].total, steps[5].internal) == (2, 3, False)
    assert steps[7] == VertexStarted(7, "exporting to image")
    assert logs(events, 5) == ["hello-bkh-27882", "second line"]
    assert VertexDone(5, 0.4) in events
    assert VertexStatus(7, "writing image sha256:959025b15a8a9148e78215d510e227a59513822302a634946bfed693c4247589"
                           " done") in events
    assert not [event for event in events if isinstance(event, BuildError | Message | VertexError)]
    # Digest lines are not statuses.
    assert not [event for event in events if isinstance(event, VertexStatus) and event.text.startswith("sha256:")]


def test_it_reads_the_steps_of_a_cached_rebuild():
    events = parse("cached.txt")
    assert [event.vertex for event in events if isinstance(event, VertexCached)] == [1, 2, 5, 6]
    assert logs(events, 5) == []


def test_it_names_the_stages_of_a_multi_stage_build_once_each():
    events = parse("multistage.txt")
    steps = started(events)
    assert [event.vertex for event in events if isinstance(event, VertexStarted)] == [1, 2, 3, 4, 8, 5, 6, 7, 9,
                                                                                        10, 11]
    assert {number: (step.stage, step.step, step.total) for number, step in steps.items() if step.step} == {
        4: ("stage-2", 1, 2), 8: ("stage-2", 2, 2), 5: ("base", 2, 2), 6: ("tools", 1, 1),
        7: ("stage-3", 1, 3), 9: ("stage-3", 2, 3), 10: ("stage-3", 3, 3),
    }
    # Vertex 8 was left ("#8 ...") and shown again: one start, one end.
    assert [type(event) for event in of(events, 8)] == [VertexStarted, VertexDone]
    assert logs(events, 10) == ["tools", "unnamed", "base"]


def test_a_target_build_shows_vertices_in_the_printers_order_and_a_from_without_its_stage():
    events = parse("target.txt")
    order = [event.vertex for event in events if isinstance(event, VertexStarted)]
    assert sorted(order) == [1, 2, 3, 4, 5, 6, 7] and order != sorted(order)
    steps = {event.instruction: event.stage for event in events if isinstance(event, VertexStarted) and event.step}
    assert steps == {"FROM docker.io/library/busybox:1.35.0": None, "RUN echo base > /base": "base",
                     "RUN echo middle > /middle": "middle"}


def test_a_failing_run_gives_its_error_and_the_final_error_once():
    events = parse("failing_run.txt")
    message = "executor failed running [/bin/sh -c echo before-fail && echo to-stderr >&2 && false]: exit code: 1"
    assert logs(events, 5) == ["to-stderr", "before-fail"]
    assert of(events, 5)[-1] == VertexError(5, message)
    assert [event for event in events if isinstance(event, BuildError)] == [BuildError(message)]
    assert not [event for event in events if isinstance(event, Message)]


def test_a_line_cut_by_a_switch_continues_and_a_step_end_glued_to_output_is_split():
    events = parse("parallel_partial_fail.txt")
    assert of(events, 4)[1:] == [
        VertexLog(4, "a-partial"),
        # Printed again in full ("a-partiala-rest") when the printer came back to vertex 4: only the new part.
        VertexLog(4, "a-rest", continued=True),
        # "#4 2.762 a-end-partial#4 DONE 3.8s": the step ended after output with no newline.
        VertexLog(4, "a-end-partial"),
        VertexDone(4, 3.8),
    ]
    assert logs(events, 9) == ["b-line1", "b-line2"]
    # The summary block after the error repeats "#7 0.829 fail-partial": not read twice.
    assert logs(events, 7) == ["fail-partial"]
    assert [event for event in events if isinstance(event, BuildError)] == [
        BuildError("executor failed running [/bin/sh -c printf 'fail-partial'; false]: exit code: 1")]


def test_what_a_run_prints_is_never_taken_for_the_printers_lines():
    events = parse("tricky.txt")
    # Vertex 5 printed imitations of every kind of line; vertex 6 odd characters and a last line without newline.
    assert [type(event) for event in of(events, 5)] == [VertexStarted] + [VertexLog] * 14 + [VertexDone]
    assert of(events, 5)[-1] == VertexDone(5, 1.1)
    texts = logs(events, 5)
    assert texts[:11] == ["#9 DONE 1.0s", "", "#3 [1/2] FROM x", "#4 ERROR: fake", "#5 CACHED", "#5 CANCELED",
                          "#5 ...", "------", "failed to solve: fake", "error: fake final\r#7 CACHED\rcr-end",
                          "forged#5 DONE 9.9s"]
    assert texts[11] == "partial-rest"
    # 70,000 characters then a forged "#5 DONE 0.1s": cut in the middle, its end kept, still a line of output.
    assert len(texts[12]) < MAX_LINE + 400 and texts[12].startswith("y" * 1000)
    assert "bytes cut ..." in texts[12] and texts[12].endswith("yyy#5 DONE 0.1s")
    assert texts[13] == "last-forged#5 DONE 1.0s"
    assert logs(events, 6) == ["\x1b[31mred\x1b[0m tab\there\x0bvt\x0cff\x85nel\u2028ls", "\ufffd\ufffd bad utf8",
                               "glued-end"]
    assert of(events, 6)[-1] == VertexDone(6, 0.5)
    assert not [event for event in events if isinstance(event, BuildError | Message | VertexError
                                                        | VertexCanceled | VertexCached) and
                getattr(event, "vertex", 5) in (5, 6)]
    assert started(events).keys() == {1, 2, 3, 4, 5, 6, 7}


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_chunk_boundaries_do_not_change_the_events(chunk):
    for name in ("tricky.txt", "parallel_partial_fail.txt", "multistage.txt"):
        assert parse(name, chunk) == parse(name)


@pytest.mark.parametrize(("name", "message"), [
    ("parse_error.txt", "failed to solve with frontend dockerfile.v0: failed to create LLB definition: dockerfile "
                        "parse error line 2: unknown instruction: FOO"),
    ("missing_file.txt", 'failed to compute cache key: "/missing.txt" not found: not found'),
])
def test_the_final_error_line_is_a_build_error(name, message):
    events = parse(name)
    assert [event for event in events if isinstance(event, BuildError)] == [BuildError(message)]


def test_a_forged_step_end_followed_by_more_of_the_same_vertex_is_output():
    events = parse_lines("#5 [2/2] RUN x", "#5 0.100 text#5 DONE 9.9s", "#5 0.200 more", "#5 DONE 0.3s")
    assert of(events, 5)[1:] == [VertexLog(5, "text#5 DONE 9.9s"), VertexLog(5, "more"), VertexDone(5, 0.3)]
    # Another vertex's DONE glued on is output too: only the vertex's own end is ever glued to its line.
    events = parse_lines("#5 [2/2] RUN x", "#5 0.100 text#4 DONE 9.9s", "", "#6 exporting to image")
    assert logs(events, 5) == ["text#4 DONE 9.9s"]
    assert not [event for event in of(events, 5) if isinstance(event, VertexDone)]


def test_a_glued_step_end_at_the_end_of_the_output_is_an_end():
    assert parse_lines("#5 [2/2] RUN x", "#5 0.100 text#5 DONE 0.2s")[1:] == [VertexLog(5, "text"),
                                                                             VertexDone(5, 0.2)]


def test_canceled_errors_and_messages():
    events = parse_lines(
        "#6 [2/2] RUN sleep 300", "#6 CANCELED", "#7 [internal] load x", "#7 ERROR", "#8 DONE",
        'time="2026-12-02T02:07:29Z" level=error msg="got 3 SIGTERM/SIGINTs, forcing shutdown"',
        "WARNING: something the CLI says", "ERROR: failed to solve: boom", "error: other",
    )
    assert VertexCanceled(6) in events
    assert VertexError(7, "") in events
    # A vertex seen for the first time: the line is its name, even when it looks like an end.
    assert VertexStarted(8, "DONE") in events
    assert events[-4:] == [
        Message('time="2026-12-02T02:07:29Z" level=error msg="got 3 SIGTERM/SIGINTs, forcing shutdown"'),
        # After a vertex failed, whatever the CLI prints outside vertices is its error.
        BuildError("WARNING: something the CLI says"), BuildError("failed to solve: boom"), BuildError("other"),
    ]
    assert parse_lines("WARNING: before any failure")[-1] == Message("WARNING: before any failure")


def test_split_lines_breaks_on_newline_only_and_cuts_long_lines():
    data = b"a\rb\x0bc\x0cd\x1ce\xc2\x85f\xe2\x80\xa8g\nsecond\n\nlast"
    assert list(split_lines([data])) == ["a\rb\x0bc\x0cd\x1ce\x85f\u2028g", "second", "", "last"]
    long = b"#5 1.000 " + b"x" * 500 + b"END\nnext\n"
    lines = list(split_lines([long[index:index + 3] for index in range(0, len(long), 3)], max_line=100))
    assert lines[0].startswith("#5 1.000 xxx") and lines[0].endswith("xEND")
    assert "[... 156 bytes cut ...]" in lines[0]
    assert lines[1] == "next"
