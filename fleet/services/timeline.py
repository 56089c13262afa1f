"""A swarm deployment's rollout task by task, as the deployment page shows it while Swarm rolls: the states each
task went through as the console saw them (remember_states, called by the deployer at each reading of the service)
and the tasks grouped by the image digest they run, this release's first (service_timeline). Task errors and node
names are the engine's words: they reach the page only through templates, which escape them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.utils import timezone

from fleet.models import Deployment

# The states kept per task: a task goes new -> pending -> assigned -> accepted -> preparing -> starting -> running
# and on to one end (complete, shutdown, failed, rejected, orphaned, remove), so this holds a whole life.
MAX_HISTORY = 12
# The length of the digests a page shows: `sha256:` and 12 hex digits, as `docker images --digests` abbreviates.
SHORT_DIGEST = len("sha256:") + 12
RFC3339_RE = re.compile(r"^(?P<seconds>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<fraction>\d{1,9}))?"
                        r"(?P<zone>Z|[+-]\d\d:\d\d)$")


def remember_states(previous: dict[str, Any] | None, current: dict[str, Any]) -> dict[str, Any]:
    """`current` (a reading of console/engine/swarm.py service_state) with each task's `history`: the states the
    console saw it in across readings, oldest first, each with the time Swarm says the task entered it, and
    `read_at`, when the console read it. A state the task passed through between two readings is not in it (Swarm
    keeps only a task's current state)."""
    seen = {task.get("id"): task.get("history") or [] for task in ((previous or {}).get("tasks") or [])}
    tasks = []
    for task in current.get("tasks") or []:
        history = list(seen.get(task.get("id"), []))
        if not history or history[-1].get("state") != task.get("state"):
            history.append({"state": task.get("state", ""), "since": task.get("state_since", "")})
        tasks.append({**task, "history": history[-MAX_HISTORY:]})
    return {**current, "tasks": tasks, "read_at": timezone.now().isoformat()}


def _moment(text: Any) -> datetime | None:
    """Swarm's RFC 3339 time (nanoseconds, `Z` or an offset) as a datetime (to microseconds), or None."""
    match = RFC3339_RE.match(text) if isinstance(text, str) else None
    if match is None or match["seconds"].startswith("0001-"):
        return None
    zone = "+00:00" if match["zone"] == "Z" else match["zone"]
    try:
        return datetime.fromisoformat(f"{match['seconds']}.{(match['fraction'] or '').ljust(6, '0')[:6]}{zone}")
    except ValueError:
        return None


def short_digest(digest: str) -> str:
    return digest[:SHORT_DIGEST]


def _row(task: dict[str, Any]) -> dict[str, Any]:
    history = [{"state": step.get("state", ""), "since": _moment(step.get("since"))}
               for step in task.get("history") or []]
    return {
        "id": task.get("id", ""), "slot": task.get("slot"), "node": task.get("node", ""),
        "desired_state": task.get("desired_state", ""), "state": task.get("state", ""),
        "since": _moment(task.get("state_since")), "error": task.get("error", ""),
        "message": task.get("message", ""), "image_digest": task.get("image_digest", ""),
        "short_digest": short_digest(task.get("image_digest", "")),
        # The states before the current one, for the row's "seen before" column.
        "earlier": history[:-1] if history and history[-1]["state"] == task.get("state") else history,
    }


def _groups(tasks: list[dict[str, Any]], digest: str) -> list[dict[str, Any]]:
    """Tasks by image digest: this release's first, then the earlier ones (the most recently updated first); in a
    group by slot, a slot's newest task first."""
    by_digest: dict[str, list[dict[str, Any]]] = {}
    for task in sorted(tasks, key=lambda task: task.get("updated", ""), reverse=True):
        by_digest.setdefault(task.get("image_digest", ""), []).append(task)
    order = sorted(by_digest, key=lambda key: key != digest)
    groups = []
    for key in order:
        rows = [_row(task) for task in sorted(by_digest[key], key=lambda task: task.get("slot") or 0)]
        if digest and key == digest:
            kind, label = "new", "This release"
        elif key:
            kind, label = "old", "Earlier release" if digest else "Release"
        else:
            kind, label = "old", "Image without a digest"
        # Running as it should, and running while Swarm stops it (desired shutdown): only the first serve on.
        running = sum(1 for row in rows if row["state"] == "running" and row["desired_state"] == "running")
        stopping = sum(1 for row in rows if row["state"] == "running" and row["desired_state"] != "running")
        groups.append({"kind": kind, "label": label, "digest": key, "short_digest": short_digest(key),
                       "tasks": rows, "running": running, "stopping": stopping})
    return groups


def service_timeline(deployment: Deployment) -> list[dict[str, Any]]:
    """One entry per target of a swarm deployment: its host, its service as last read ({id, replicas, running,
    update_state, update_message, update_started}) and its tasks grouped by release (_groups); `service` is None
    until the deployer's first reading. Empty for a deployment to plain hosts."""
    if deployment.swarm is None:
        return []
    digest = deployment.image_digest.rpartition("@")[2] if "@" in deployment.image_digest else ""
    timelines = []
    for target in deployment.targets.all():
        service = target.service or None
        entry: dict[str, Any] = {"target": target, "host_name": target.host_name, "service": None, "groups": []}
        if service:
            entry["service"] = {
                "id": service.get("id", ""), "replicas": service.get("replicas"),
                "running": service.get("running", 0), "update_state": service.get("update_state", ""),
                "update_message": service.get("update_message", ""),
                "update_started": _moment(service.get("update_started")), "removed": bool(service.get("removed")),
                "read_at": _moment(service.get("read_at")),
            }
            entry["groups"] = _groups(service.get("tasks") or [], digest)
        timelines.append(entry)
    return timelines
