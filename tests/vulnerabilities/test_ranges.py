"""OSV's range evaluation: introduced, fixed, last_affected and limit events, several ranges, `versions` lists."""

from __future__ import annotations

from builds.vulnerabilities.ranges import evaluate, in_range
from builds.vulnerabilities.versions import DPKG, PEP440, SEMVER


def eco(*events: tuple[str, str]) -> dict:
    return {"type": "ECOSYSTEM", "events": [list(event) for event in events]}


def test_it_holds_versions_from_introduced_up_to_fixed():
    events = [("introduced", "0"), ("fixed", "2.0-1")]
    assert in_range(DPKG, "1.9-3", events) == (True, "2.0-1")
    assert in_range(DPKG, "2.0-1", events) == (False, "")
    assert in_range(DPKG, "2.0-1+deb12u1", events) == (False, "")
    # dpkg order, not text: 2.0~rc1 comes before 2.0-1.
    assert in_range(DPKG, "2.0~rc1", events) == (True, "2.0-1")


def test_it_holds_versions_up_to_and_including_last_affected():
    events = [("introduced", "1.0"), ("last_affected", "1.4")]
    assert in_range(PEP440, "0.9", events) == (False, "")
    assert in_range(PEP440, "1.0", events) == (True, "")
    assert in_range(PEP440, "1.4", events) == (True, "")
    assert in_range(PEP440, "1.4.post1", events) == (False, "")


def test_it_reads_events_in_version_order_whatever_their_order_in_the_record():
    events = [("fixed", "1.2.0"), ("introduced", "1.1.0"), ("fixed", "2.0.1"), ("introduced", "2.0.0")]
    assert in_range(SEMVER, "1.1.5", events) == (True, "1.2.0")
    assert in_range(SEMVER, "1.5.0", events) == (False, "")
    assert in_range(SEMVER, "2.0.0", events) == (True, "2.0.1")
    assert in_range(SEMVER, "2.0.1-rc.1", events) == (True, "2.0.1")
    assert in_range(SEMVER, "1.0.0", events) == (False, "")


def test_it_stops_at_a_limit():
    assert in_range(SEMVER, "3.0.0", [("introduced", "0"), ("limit", "3.0.0")]) == (False, "")
    assert in_range(SEMVER, "2.9.9", [("introduced", "0"), ("limit", "3.0.0")]) == (True, "")


def test_it_matches_any_of_several_ranges():
    ranges = [eco(("introduced", "1.0"), ("fixed", "1.1")), eco(("introduced", "2.0"), ("fixed", "2.3"))]
    assert evaluate(PEP440, "2.2", ranges, []).affected
    assert evaluate(PEP440, "2.2", ranges, []).fixed == "2.3"
    assert not evaluate(PEP440, "1.5", ranges, []).affected


def test_it_matches_versions_listed_by_name():
    result = evaluate(PEP440, "0.5", [eco(("introduced", "1.0"), ("fixed", "1.1"))], ["0.5", "0.6"])
    assert result.affected and result.fixed == "1.1"
    assert not evaluate(PEP440, "0.7", [], ["0.5", "0.6"]).affected


def test_it_leaves_out_git_ranges_and_ranges_it_cannot_read():
    ranges = [{"type": "GIT", "repo": "x", "events": [["introduced", "0"]]},
              eco(("introduced", "0"), ("fixed", "not a version!"))]
    result = evaluate(DPKG, "1.0", ranges, [])
    assert not result.affected
    assert result.unreadable == 1


def test_it_uses_semver_order_for_semver_ranges_in_any_ecosystem():
    # In PEP 440, 1.0.0-rc.1 is 1.0.0rc1, also below 1.0.0; the point is that a SEMVER range is read as semver.
    ranges = [{"type": "SEMVER", "events": [["introduced", "0"], ["fixed", "1.0.0"]]}]
    assert evaluate(PEP440, "1.0.0-alpha.1", ranges, []).affected


def test_it_finds_nothing_with_no_introduced_event():
    assert not evaluate(DPKG, "1.0", [eco(("fixed", "2.0"))], []).affected
