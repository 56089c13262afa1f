"""static/js/poll.js, the one polling mechanism of the job pages, in headless Chromium.

The page and its API are answered by Playwright's router (no console needed): each test counts the requests the
script makes, so "stops once the job is final" is a count that would grow if the loop kept going.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = pytest.mark.browser

ORIGIN = "http://console.test"
POLL_JS = (Path(__file__).resolve().parents[2] / "static" / "js" / "poll.js").read_text()
PAGE = """<!doctype html><html><head><script src="/static/js/poll.js"></script></head><body></body></html>"""
# The console's own policy for scripts (console/security.py): poll.js must run without inline code or eval.
CSP = "default-src 'self'; script-src 'self'; style-src 'self'"
# Long enough for several more ticks at the 20 ms the tests poll at.
QUIET_S = 0.3


def serve(page, answers: dict) -> list[str]:
    """Answers GET ORIGIN/<path> with answers[path](query) -> (status, body); returns the requested URLs."""
    requested: list[str] = []

    def handle(route) -> None:
        url = urlsplit(route.request.url)
        if url.path == "/":
            route.fulfill(status=200, body=PAGE, headers={"Content-Type": "text/html",
                                                          "Content-Security-Policy": CSP})
        elif url.path == "/static/js/poll.js":
            route.fulfill(status=200, body=POLL_JS, headers={"Content-Type": "text/javascript"})
        else:
            requested.append(route.request.url)
            status, body = answers[url.path](parse_qs(url.query))
            route.fulfill(status=status, body=json.dumps(body), headers={"Content-Type": "application/json"})

    page.route(f"{ORIGIN}/**", handle)
    page.goto(f"{ORIGIN}/")
    page.wait_for_function("() => window.consolePoll !== undefined")
    return requested


def test_it_polls_until_the_job_is_final_then_stops(page):
    statuses = iter(["queued", "running", "succeeded", "running"])
    requested = serve(page, {"/api/job/": lambda query: (200, {"status": next(statuses)})})
    page.evaluate("""() => { window.seen = [];
        consolePoll.follow("/api/job/", 20, (job) => window.seen.push(job.status)); }""")
    page.wait_for_function("() => window.seen.length === 3")
    time.sleep(QUIET_S)
    assert page.evaluate("() => window.seen") == ["queued", "running", "succeeded"]
    assert len(requested) == 3


def test_it_asks_again_after_a_failed_request(page):
    answers = iter([(503, {"detail": "database not available"}), (200, {"status": "failed"})])
    requested = serve(page, {"/api/job/": lambda query: next(answers)})
    page.evaluate("""() => { window.seen = [];
        consolePoll.follow("/api/job/", 20, (job) => window.seen.push(job.status), { retry: 20 }); }""")
    page.wait_for_function("() => window.seen.length === 1")
    time.sleep(QUIET_S)
    assert page.evaluate("() => window.seen") == ["failed"]
    assert len(requested) == 2


def test_it_follows_a_log_from_the_offset_the_page_already_shows(page):
    total = 4

    def log(query: dict) -> tuple[int, dict]:
        offset = int(query["offset"][0])
        return 200, {"lines": [f"line {offset}"], "next_offset": offset + 1, "finished": offset + 1 >= total}

    requested = serve(page, {"/api/log/": log})
    page.evaluate("""() => { window.lines = [];
        consolePoll.followLog("/api/log/", 2, 20, (lines) => window.lines.push(...lines)); }""")
    page.wait_for_function("() => window.lines.length === 2")
    time.sleep(QUIET_S)
    assert page.evaluate("() => window.lines") == ["line 2", "line 3"]
    assert [parse_qs(urlsplit(url).query)["offset"] for url in requested] == [["2"], ["3"]]


def test_it_stops_when_the_page_says_so(page):
    # The image page ends on its own condition (the analysis status), not on the job's `status`.
    statuses = iter(["running", "succeeded"])
    requested = serve(page, {"/api/image/": lambda query: (200, {"analysis_status": next(statuses)})})
    page.evaluate("""() => { window.seen = [];
        consolePoll.follow("/api/image/", 20, (image) => window.seen.push(image.analysis_status),
                           { isDone: (image) => image.analysis_status !== "running" }); }""")
    page.wait_for_function("() => window.seen.length === 2")
    time.sleep(QUIET_S)
    assert len(requested) == 2
