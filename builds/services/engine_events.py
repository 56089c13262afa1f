"""Image records that follow the engine: what happens to images outside the console's own builds, tags, pulls and
removals (an operator's `docker rmi`, `docker image prune`, a tag moved on a node by hand) reaches the records from
the engine's own events.

A periodic task (builds.follow_engine_events) asks each build engine for its image events since the last time
(`GET /events?since=&until=`: the engine answers at once and closes, no connection stays open) and refreshes only
the records those events name: a `tag` or `untag` names the user by the namespace of the name (builds/access.py:
only the console makes `console-u<id>/` names), a `delete` names the image id. A refresh reads the image again
and keeps the names the engine still gives it; the events themselves are never trusted for more than "look
again". The time of the last look is kept in the cache, per engine; a look overlaps the last by a few seconds
(an event may come in while it is read), which costs nothing, as a refresh is idempotent."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict

from django.contrib.auth import get_user_model
from django.core.cache import cache

from builds import access
from builds.constants import NodeStatus
from builds.models import BuildNode, Image
from builds.services.images import forget_moved_names, forget_records
from console.engine import Engine, EngineError, EngineNotFound
from console.engine.images import image_events, inspect_image

log = logging.getLogger(__name__)

# How far back the first look goes, and how much each look overlaps the one before (seconds).
FIRST_LOOK_SECONDS = 60
OVERLAP_SECONDS = 5
# A silent engine must not hold up the periodic task (seconds).
EVENTS_TIMEOUT = 10
# Events that may change which names an image has, or whether it exists.
NAME_ACTIONS = {"tag", "untag", "pull", "load", "import"}
GONE_ACTIONS = {"delete"}


def _cursor_key(engine_url: str) -> str:
    return "builds.engine-events." + hashlib.sha256(engine_url.encode()).hexdigest()[:24]


def _engines() -> list[tuple[str, int | None]]:
    """(engine URL, build node id or None) of every engine images are recorded on: the build engine, and each
    build node's that is up."""
    engines: dict[str, int | None] = {Engine.for_builds().url: None}
    for node in BuildNode.objects.filter(status=NodeStatus.UP).exclude(engine_url=""):
        engines.setdefault(node.engine_url, node.pk)
    return list(engines.items())


def follow_engine_events() -> int:
    """Refresh the records that the build engines' image events since the last look name; returns how many
    refreshes changed a record (a name moved to another record is cleared from the old one on the way, uncounted)."""
    refreshed = 0
    for url, node_id in _engines():
        try:
            with Engine(url, timeout=EVENTS_TIMEOUT) as engine:
                refreshed += _follow(engine, url, node_id)
        except EngineError as exc:
            log.warning("Could not read the image events of %s: %s", url, exc)
    return refreshed


def _follow(engine: Engine, url: str, node_id: int | None) -> int:
    key = _cursor_key(url)
    until = time.time()
    since = cache.get(key)
    since = until - FIRST_LOOK_SECONDS if since is None else since - OVERLAP_SECONDS
    images: dict[int, set[str]] = defaultdict(set)  # user id -> image ids an event named
    names: dict[int, set[str]] = defaultdict(set)  # user id -> engine names an event named
    gone: set[str] = set()
    for event in image_events(engine, since, until):
        user_id = access.owner_id_of_name(event["name"])
        if event["action"] in NAME_ACTIONS and user_id is not None and event["id"]:
            images[user_id].add(_image_id(engine, event["id"]))
            names[user_id].add(event["name"])
        elif event["action"] in GONE_ACTIONS and event["id"]:
            gone.add(event["id"] if event["id"].startswith("sha256:") else f"sha256:{event['id']}")
    refreshed = 0
    records = Image.objects.filter(node_id=node_id)
    for record in records.filter(image_id__in=gone).select_related("owner"):
        refreshed += refresh_names(record.owner, engine, record.image_id, node_id)
    users = get_user_model().objects.in_bulk(list(images))
    for user_id, image_ids in images.items():
        user = users.get(user_id)
        if user is None:
            continue
        # Also the user's records that held one of the names before: a name the engine moved leaves them.
        holders = {record.image_id for record in records.filter(owner=user).exclude(tags=[]).only("image_id", "tags")
                   if any(access.engine_name(user, tag) in names[user_id] for tag in record.tags)}
        for image_id in sorted(image_ids | holders):
            refreshed += refresh_names(user, engine, image_id, node_id)
    cache.set(key, until, timeout=None)
    return refreshed


def _image_id(engine: Engine, reference: str) -> str:
    if reference.startswith("sha256:"):
        return reference
    try:
        return inspect_image(engine, reference)["Id"]
    except EngineNotFound:
        return reference


def refresh_names(user, engine: Engine, image_id: str, node_id: int | None = None) -> int:
    """The user's record of `image_id` on `engine` (the build engine, or build node `node_id`'s) with the names
    the engine gives it now: names it lost go, names in the user's namespace come (leaving the user's other
    records), and a record of an image the engine no longer has is forgotten. Returns 1 when the record changed."""
    record = Image.objects.for_user(user).filter(image_id=image_id, node_id=node_id).first()
    if record is None:
        return 0
    try:
        repo_tags = inspect_image(engine, image_id).get("RepoTags") or []
    except EngineNotFound:
        forget_records(Image.objects.filter(pk=record.pk))
        return 1
    engine_names = access.user_names(user, repo_tags)
    prefix = access.namespace_of(user) + "/"
    kept = [tag for tag in record.tags if access.engine_name(user, tag) in engine_names or tag in repo_tags]
    given = {access.engine_name(user, tag) for tag in kept}
    added = [name.removeprefix(prefix) for name in sorted(engine_names) if name not in given]
    tags = kept + added
    if added:
        forget_moved_names(user, image_id, added)
    if tags == record.tags:
        return 0
    Image.objects.filter(pk=record.pk).update(tags=tags)
    return 1
