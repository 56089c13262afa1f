"""Builds: one function per action, for the browser and the API alike; the worker side is builds/runner/."""

from __future__ import annotations

import contextlib
import json
import logging
import secrets as tokens
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from builds import access, dockerfile
from builds.constants import SECRET_MASK, BuilderChoice, NodeStatus
from builds.models import Build, BuildNode, BuildStep, Dispatch, Image, Source
from builds.services.options import (
    OptionError,
    check_build_args,
    check_cpuset,
    check_dockerfile,
    check_labels,
    check_secrets,
    check_tag,
    check_target,
    choose_builder,
    parse_memory,
    split_secret_args,
)
from console import jobs
from console.audit.constants import Action
from console.audit.services import record
from console.constants import JobStatus
from console.engine import Engine
from console.engine.build import CommandResult, run_throwaway
from console.errors import Conflict, TooManyRequests

log = logging.getLogger(__name__)

# The task a worker runs a build with (builds/tasks.py), sent by name.
RUN_BUILD_TASK = "builds.run_build"


@dataclass
class BuildOptions:
    dockerfile: str = "Dockerfile"
    path: str = "."
    tags: list[str] | None = None
    build_args: dict[str, str] | None = None
    secret_args: list[str] | None = None
    labels: dict[str, str] | None = None
    target: str = ""
    no_cache: bool = False
    memory_limit: str = ""
    cpu_shares: int | None = None
    cpuset_cpus: str = ""
    timeout: int | None = None
    # {name: value} for `RUN --mount=type=secret,id=name`; never in the image.
    secrets: dict[str, str] | None = None
    builder: str = BuilderChoice.AUTO


@dataclass
class CheckedOptions:
    """What checking the options found: the images the Dockerfile starts from (for the scheduler), the build's
    secrets (its own and the old secret_args), notes for its log, and its builder with the reason for it."""

    base_images: list[str]
    secrets: dict[str, str]
    notes: list[str]
    builder: str
    builder_reason: str


class DebugLimitReached(TooManyRequests):
    """The user already runs as many debug commands as DEBUG_COMMANDS_PER_USER allows."""


# A debug slot whose web process died outlives the command by this long at most, then frees itself.
DEBUG_SLOT_MARGIN_SECONDS = 60


class BuildNotDebuggable(Conflict):
    pass


def check_options(owner, source: Source, options: BuildOptions) -> CheckedOptions:
    """OptionError, naming the field, for anything the engine would refuse or the owner may not use; nothing is
    created or queued."""
    for tag in options.tags or []:
        check_tag(tag)
    parse_memory(options.memory_limit)
    check_cpuset(options.cpuset_cpus)
    check_build_args(options.build_args or {}, options.secret_args or [])
    check_labels(options.labels or {})
    if options.cpu_shares is not None and options.cpu_shares < 2:
        raise OptionError("cpu_shares", "cpu_shares must be at least 2.")
    if options.timeout is not None and options.timeout < 1:
        raise OptionError("timeout", "The timeout must be at least one second.")
    secrets = dict(options.secrets or {})
    text = check_target(source, options.dockerfile, options.path, options.target)
    granted = check_dockerfile(owner, text, options.build_args or {})
    old_secrets, notes = split_secret_args(dockerfile.parse(text, options.build_args or {}),
                                           options.build_args or {}, list(dict.fromkeys(options.secret_args or [])))
    taken = set(old_secrets) & set(secrets)
    if taken:
        raise OptionError("secret_args", f"{', '.join(sorted(taken))} is both in secrets and in secret_args.")
    secrets.update(old_secrets)
    check_secrets(secrets)
    limits = bool(options.memory_limit or options.cpu_shares is not None or options.cpuset_cpus)
    builder, reason = choose_builder(options.builder, limits=limits, secrets=bool(secrets))
    base_images = []
    for use, grant in granted:
        name = grant.reference if grant.shared else access.engine_name(owner, use.reference)
        if use.how == "FROM" and name not in base_images:
            base_images.append(name)
    return CheckedOptions(base_images, secrets, notes, builder, reason)


def trigger_build(owner, source: Source, options: BuildOptions, rebuild_of: Build | None = None) -> Build:
    """Check the options, create the build (queued) and hand it to a worker when the owner has room."""
    checked = check_options(owner, source, options)
    # The old secret_args are secrets now: shown masked among the build args as before, never passed as build
    # args (they would reach the image's history: the runner leaves out every name in secret_names).
    build_args = {name: (SECRET_MASK if name in checked.secrets else value)
                  for name, value in (options.build_args or {}).items()}
    build = Build.objects.create(
        owner=owner, repository=source.repository, source=source, dockerfile=options.dockerfile or "Dockerfile",
        path=options.path or ".", tags=list(options.tags or []), build_args=build_args,
        secret_args=list(dict.fromkeys(options.secret_args or [])),
        secrets=json.dumps(checked.secrets) if checked.secrets else "", secret_names=sorted(checked.secrets),
        labels=dict(options.labels or {}), target=options.target or "", no_cache=options.no_cache,
        memory_limit=options.memory_limit or "", cpu_shares=options.cpu_shares, cpuset_cpus=options.cpuset_cpus or "",
        timeout=options.timeout, rebuild_of=rebuild_of, base_images=checked.base_images,
        requested_builder=options.builder or BuilderChoice.AUTO, builder=checked.builder,
        builder_reason=checked.builder_reason,
    )
    if checked.notes:
        jobs.append_log(build, checked.notes)
    detail = {"repository": source.repository.name, "tags": build.tags}
    if rebuild_of is not None:
        detail["rebuild_of"] = rebuild_of.pk
    record(owner, Action.BUILD_STARTED, target=build, detail=detail)
    dispatch_queued(owner)
    build.refresh_from_db()
    return build


def dispatch_queued(owner) -> list[int]:
    """Enqueue the owner's oldest waiting builds while fewer than BUILDS_PER_USER are running or handed out.

    On a build farm each build goes to the queue of the node `choose_node` picks; a build no node has room
    for waits (its place in the owner's queue kept) until a node frees one. With no node registered, builds go
    to the plain builds queue as on a single engine. See builds.models.Dispatch for the states.
    """
    with transaction.atomic():
        # One dispatcher per user at a time, so two triggers cannot both take the last free place.
        get_user_model().objects.select_for_update().filter(pk=owner.pk).first()
        mine = Build.objects.filter(owner=owner)
        # One statement, one snapshot: a worker claiming a build (queued -> running) between two counts would
        # be counted in neither, and the owner would get one build too many.
        busy = mine.busy().count()
        room = max(0, settings.BUILDS_PER_USER - busy)
        waiting = mine.waiting().order_by("queued_at", "id")
        placed: list[tuple[int, BuildNode | None]] = []
        farm = farm_nodes(lock=True) if room and waiting.exists() else []
        counts = assigned_counts(farm) if farm else {}
        # On a farm a build waiting for its repository's node lets later ones go first: look further than `room`.
        for build in waiting[:room * 10 if farm else room]:
            if len(placed) >= room:
                break
            node = choose_node(build, farm, counts) if farm else None
            if farm and node is None:
                continue
            if node is not None:
                counts[node.pk] += 1
            # The claim checks the node, and only a still-waiting build is taken.
            if Build.objects.waiting().filter(pk=build.pk).update(task_id=Dispatch.HANDING_OUT, node=node):
                placed.append((build.pk, node))

    def send() -> None:
        for build_id, node in placed:
            handing_out = Build.objects.filter(pk=build_id, task_id=Dispatch.HANDING_OUT)
            try:
                task_id = jobs.send(RUN_BUILD_TASK, build_id, queue=node.queue if node else None)
            except Exception:  # the broker's own errors; the periodic dispatcher tries again
                log.exception("Could not hand build %s to the broker", build_id)
                handing_out.update(task_id=Dispatch.WAITING, node=None)
                continue
            handing_out.update(task_id=task_id or Dispatch.SENT_WITHOUT_ID)

    transaction.on_commit(send)
    return [build_id for build_id, _ in placed]


def queue_position(build: Build) -> int | None:
    """How many of the owner's builds wait before this one for a free place (None once it has a place)."""
    if not build.waiting:
        return None
    return Build.objects.waiting().filter(owner=build.owner_id, queued_at__lt=build.queued_at).count() + 1


# -- the list's rows -------------------------------------------------------------------------------------------

BUILD_ROW_FIELDS = ("id", "number", "status", "source_id", "repository_id", "dockerfile", "path", "tags", "build_args",
                    "secret_args", "labels", "target", "no_cache", "memory_limit", "cpu_shares", "cpuset_cpus",
                    "timeout", "step_count", "image_id", "error", "failed_step", "last_good_layer", "worker",
                    "node__name", "rebuild_of_id", "queued_at", "started_at", "finished_at", "secret_names",
                    "requested_builder", "builder", "builder_reason", "owner_id", "task_id")
STEP_ROW_FIELDS = ("build_id", "number", "instruction", "stage", "cached", "layer_id", "status", "started_at",
                   "finished_at")


def _timestamp(value) -> str | None:
    # As DRF's DateTimeField writes it (UTC with a Z), so that the list and the detail agree.
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def build_rows(builds) -> list[dict]:
    """The API's representation of many builds (the shape BuildSerializer gives one), in four queries and without
    model instances or serializer fields: a page of fifty builds with their steps costs a few milliseconds."""
    rows = list(builds.values(*BUILD_ROW_FIELDS))
    ids = [row["id"] for row in rows]
    steps: dict[int, list[dict]] = {pk: [] for pk in ids}
    for step in BuildStep.objects.filter(build_id__in=ids).order_by("build_id", "number").values(*STEP_ROW_FIELDS):
        finished, started = step.pop("finished_at"), step.pop("started_at")
        step["duration_ms"] = int((finished - started).total_seconds() * 1000) if finished else None
        steps[step.pop("build_id")].append(step)
    # The image a build recorded last (Image's own order), as `build.images.all()[0]`.
    images: dict[int, int] = {}
    for build_id, image_pk in (Image.objects.filter(build_id__in=ids).order_by("build_id", "-recorded", "-id")
                               .values_list("build_id", "pk")):
        images.setdefault(build_id, image_pk)
    positions = _queue_positions([row for row in rows if row["status"] == JobStatus.QUEUED
                                  and row["task_id"] == Dispatch.WAITING])
    for row in rows:
        row.pop("owner_id"), row.pop("task_id")
        row["source"], row["repository"] = row.pop("source_id"), row.pop("repository_id")
        row["node"], row["rebuild_of"] = row.pop("node__name"), row.pop("rebuild_of_id")
        row["steps"] = steps[row["id"]]
        row["image"] = images.get(row["id"])
        row["debug_command"] = (f"docker run --rm -ti {row['last_good_layer']} /bin/sh"
                                if row["last_good_layer"] else "")
        row["queue_position"] = positions.get(row["id"])
        for name in ("queued_at", "started_at", "finished_at"):
            row[name] = _timestamp(row[name])
    return rows


def _queue_positions(waiting_rows: list[dict]) -> dict[int, int]:
    """queue_position for many waiting builds, in one query: their owners' waiting builds, counted in Python."""
    if not waiting_rows:
        return {}
    queued: dict[int, list] = {}
    for owner_id, queued_at in (Build.objects.waiting().filter(owner_id__in={row["owner_id"] for row in waiting_rows})
                                .values_list("owner_id", "queued_at")):
        queued.setdefault(owner_id, []).append(queued_at)
    return {row["id"]: sum(1 for moment in queued.get(row["owner_id"], []) if moment < row["queued_at"]) + 1
            for row in waiting_rows}


def cancel_build(build: Build) -> bool:
    """A queued build never starts; a running one is stopped by its worker within seconds."""
    asked = jobs.request_cancel(build)
    if asked:
        record(build.owner, Action.BUILD_CANCELLED, target=build)
    if asked and build.status == JobStatus.CANCELLED:
        if Dispatch.is_celery_task(build.task_id):
            from console.celery import app

            app.control.revoke(build.task_id)
        dispatch_queued(build.owner)
    return asked


def rebuild(build: Build) -> Build:
    """A new build of the same source with the same options, secrets included (a build from before secrets gives
    its secret build args again, which the checks then map or refuse as for a new one)."""
    old_secret_args = json.loads(build.secret_build_args) if build.secret_build_args else {}
    build_args = {name: old_secret_args.get(name, value) for name, value in build.build_args.items()}
    options = BuildOptions(
        dockerfile=build.dockerfile, path=build.path, tags=build.tags, build_args=build_args,
        secret_args=[name for name in build.secret_args if name in old_secret_args],
        secrets=json.loads(build.secrets) if build.secrets else {}, builder=build.requested_builder,
        labels=build.labels, target=build.target, no_cache=build.no_cache, memory_limit=build.memory_limit,
        cpu_shares=build.cpu_shares, cpuset_cpus=build.cpuset_cpus, timeout=build.timeout,
    )
    return trigger_build(build.owner, build.source, options, rebuild_of=build)


def debug_in_last_good_layer(build: Build, command: str) -> CommandResult:
    """Run a command in a throwaway container of the layer below the failed step."""
    if build.status != JobStatus.FAILED or not build.last_good_layer:
        raise BuildNotDebuggable("Only a failed build with a last good layer can be debugged.")
    memory = parse_memory(settings.DEBUG_COMMAND_MEMORY)
    nano_cpus = int(settings.DEBUG_COMMAND_CPUS * 1_000_000_000)
    # The layer the worker learnt from the engine's own answers, on the engine the build ran on (builds/access.py).
    layer = access.grant_for_build_layer(build).reference
    with _debug_slot(build.owner_id), engine_for(build) as engine:
        return run_throwaway(engine, layer, command, settings.DEBUG_COMMAND_TIMEOUT, memory, nano_cpus=nano_cpus)


@contextlib.contextmanager
def _debug_slot(user_id: int) -> Iterator[None]:
    """Hold one of the user's DEBUG_COMMANDS_PER_USER slots while a debug command runs, or DebugLimitReached.

    Slots are cache keys taken with `add`, atomic in the shared cache (Redis SET NX, or the database table's
    unique key), so web processes on several machines count together."""
    limit = settings.DEBUG_COMMANDS_PER_USER
    token = tokens.token_hex(8)
    lifetime = settings.DEBUG_COMMAND_TIMEOUT + DEBUG_SLOT_MARGIN_SECONDS
    for slot in range(limit):
        key = f"debug-command:{user_id}:{slot}"
        if cache.add(key, token, timeout=lifetime):
            break
    else:
        raise DebugLimitReached(
            f"You already have {limit} debug command{'s' if limit != 1 else ''} running; "
            "wait for it to finish, then try again."
        )
    try:
        yield
    finally:
        # Only our own: after an expiry the slot may be someone else's command now.
        if cache.get(key) == token:
            cache.delete(key)


# -- scheduling (the dispatcher's side) -----------------------------------------------------------------------


def farm_nodes(lock: bool = False) -> list[BuildNode]:
    """Every registered node (an empty farm means the single-engine default), locked while a dispatcher places
    builds so that two dispatchers cannot both take a node's last place."""
    nodes = BuildNode.objects.order_by("pk")
    if lock:
        nodes = nodes.select_for_update()
    return list(nodes)


def assigned_counts(nodes: list[BuildNode]) -> dict[int, int]:
    """Builds each node is running or has been handed and not yet started."""
    counts = {node.pk: 0 for node in nodes}
    rows = (Build.objects.filter(node__in=[n.pk for n in nodes]).busy()
            .values("node").annotate(count=Count("pk")))
    for row in rows:
        counts[row["node"]] = row["count"]
    return counts


def is_available(node: BuildNode) -> bool:
    fresh = timezone.now() - timedelta(seconds=settings.BUILD_NODE_TIMEOUT)
    return (node.status == NodeStatus.UP and not node.drained and node.engine_ok
            and node.heartbeat_at is not None and node.heartbeat_at >= fresh)


def choose_node(build: Build, nodes: list[BuildNode], counts: dict[int, int]) -> BuildNode | None:
    """A healthy, non-drained node with room: first the one that built this repository last (its layer cache),
    then one that holds the build's base images, then the least loaded.

    When the repository's last node is healthy but full, the build waits for it (None) for BUILD_AFFINITY_WAIT
    seconds after it was queued, and later builds may go first: a build placed elsewhere would redo every
    step its cache holds, which costs more than the wait for a place on that node.
    """
    available = [node for node in nodes if is_available(node)]
    with_room = [node for node in available if counts.get(node.pk, 0) < node.capacity]
    if not with_room:
        return None
    last_built = dict(
        Build.objects.filter(repository=build.repository_id, node__in=[n.pk for n in available])
        .exclude(pk=build.pk).values("node").annotate(last=Max("pk")).values_list("node", "last")
    )
    if last_built:
        home = max(available, key=lambda node: last_built.get(node.pk, 0))
        waited = (timezone.now() - build.queued_at).total_seconds()
        if home not in with_room and waited < settings.BUILD_AFFINITY_WAIT:
            return None
    needed = set(build.base_images or [])

    def rank(node: BuildNode) -> tuple:
        holds_bases = needed <= set(node.base_images or [])
        return (-last_built.get(node.pk, 0), not holds_bases, counts.get(node.pk, 0) / node.capacity, node.name)

    return min(with_room, key=rank)


def engine_for(build: Build, timeout: int | None = None) -> Engine:
    """The engine a build ran on: its node's, else the single build engine."""
    if build.node_id is not None and build.node is not None:
        return Engine(build.node.engine_url, timeout=timeout)
    return Engine.for_builds(timeout=timeout)


def mask_secrets(text: str, secrets: dict[str, str]) -> str:
    for value in sorted(secrets.values(), key=len, reverse=True):
        if value:
            text = text.replace(value, SECRET_MASK)
    return text
