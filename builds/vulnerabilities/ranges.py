"""Whether a version is inside an OSV record's affected ranges, and the version that fixes it.

The evaluation is OSV's own (the schema's "Evaluation" section): a version is affected when one of the `versions`
listed is it, or when one range of type ECOSYSTEM or SEMVER holds it. A range's events are sorted in the version
order; walking them, `introduced` at or below the version makes it affected, `fixed` or `limit` at or below it
unaffected again, and `last_affected` below it unaffected. `introduced: "0"` is before every version. GIT ranges
name commits, not versions: they are left out. A range whose events or version the order cannot read is left out
too (counted in `Evaluation.unreadable`), never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cmp_to_key

from builds.vulnerabilities.versions import SEMVER, BadVersion, compare

RANGE_TYPES = ("ECOSYSTEM", "SEMVER")
EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")


@dataclass(frozen=True)
class Evaluation:
    affected: bool
    # The lowest `fixed` above the version in the range that holds it ("" when none is known).
    fixed: str = ""
    unreadable: int = 0


def _order_of(range_type: str, ecosystem_order: str) -> str:
    return SEMVER if range_type == "SEMVER" else ecosystem_order


def _event_cmp(order: str):
    def cmp(a: tuple[str, str], b: tuple[str, str]) -> int:
        if a[1] == b[1] == "0":
            return 0
        if a[1] == "0" and a[0] == "introduced":
            return -1
        if b[1] == "0" and b[0] == "introduced":
            return 1
        return compare(order, a[1], b[1])

    return cmp_to_key(cmp)


def in_range(order: str, version: str, events: list[tuple[str, str]]) -> tuple[bool, str]:
    """(affected, the fix above it) for one range's events [(kind, version)]; BadVersion when unreadable."""
    ordered = sorted(events, key=_event_cmp(order))
    affected = False
    fixed = ""
    for kind, at in ordered:
        if kind == "introduced":
            if at == "0" or compare(order, version, at) >= 0:
                affected = True
        elif kind in ("fixed", "limit"):
            if compare(order, version, at) >= 0:
                affected = False
        elif kind == "last_affected":
            if compare(order, version, at) > 0:
                affected = False
    if affected:
        # The first fix after the version: the events are in order, so the first `fixed` above it.
        for kind, at in ordered:
            if kind == "fixed" and compare(order, version, at) < 0:
                fixed = at
                break
    return affected, fixed


def evaluate(order: str, version: str, ranges: list[dict], versions: list[str]) -> Evaluation:
    """Whether `version` is affected by one `affected[]` entry (its stored `ranges` and `versions`), in `order`
    (the ecosystem's; SEMVER ranges use semver whatever the ecosystem)."""
    unreadable = 0
    listed = version in versions
    for entry in ranges:
        range_type = entry.get("type")
        if range_type not in RANGE_TYPES:
            continue
        try:
            affected, fixed = in_range(_order_of(range_type, order), version, entry.get("events") or [])
        except BadVersion:
            unreadable += 1
            continue
        if affected:
            return Evaluation(True, fixed, unreadable)
    if not listed:
        return Evaluation(False, "", unreadable)
    # Listed by name: the first fix above it in a range, where one says so.
    for entry in ranges:
        if entry.get("type") not in RANGE_TYPES:
            continue
        range_order = _order_of(entry["type"], order)
        try:
            fixes = sorted((at for kind, at in entry.get("events") or []
                            if kind == "fixed" and compare(range_order, version, at) < 0),
                           key=cmp_to_key(lambda a, b, o=range_order: compare(o, a, b)))
        except BadVersion:
            continue
        if fixes:
            return Evaluation(True, fixes[0], unreadable)
    return Evaluation(True, "", unreadable)
