"""The audit log in words: "alice started build #3 of shop", with a link to the object while it exists and the
viewer may see it. The page and the API's `summary` share the sentences; links are resolved in bulk, one query per
kind of object on the page, never one per event. Objects numbered per user (console/numbering.py) go by the number
their event kept (detail "number"); events written before numbers name them by id.

The console sits below the apps (pyproject.toml's layers): their models are named here, not imported."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.urls import reverse

from console.audit.constants import REASON_BAD_CREDENTIALS, REASON_LOCKED, Action
from console.audit.models import AuditEvent

# The page of each kind of object an event names (target_type, Django's app_label.model), or None for a list.
DETAIL_PAGES: dict[str, str] = {
    "builds.repository": "builds:repository-detail",
    "builds.source": "builds:source-detail",
    "builds.build": "builds:build-detail",
    "builds.image": "builds:image-detail",
    "builds.sourceimport": "builds:source-import-detail",
    "registry.registryaccount": "registry:registry-detail",
    "registry.push": "registry:push-detail",
    "registry.pull": "registry:pull-detail",
    "fleet.host": "fleet:host-detail",
    "fleet.deployment": "fleet:deployment-detail",
}
# Objects without a page of their own: the link goes to their list (tokens are listed, never shown one by one).
LIST_PAGES: dict[str, str] = {"accounts.accesstoken": "accounts:token-list"}
# A job's label ends in the status it had when the event was written ("build #12 of shop (queued)"): not shown.
FROZEN_STATUS = re.compile(r"\s*\((queued|running|succeeded|failed|cancelled)\)$")
# Detail the sentence already says, or that reads as noise next to it.
SAID_IN_THE_SENTENCE = {"via", "number"}
# Detail naming another numbered object by id, and the key of its per-user number beside it (written since
# numbers): shown by the number, which is what its pages say.
NUMBER_OF = {"release": "release_number", "redeploy_of": "redeploy_of_number", "scale_of": "scale_of_number"}


@dataclass
class Described:
    """One event as the page shows it: its sentence (with the object's words marked for the link) and the rest."""

    event: AuditEvent
    before: str
    object_words: str
    after: str
    url: str | None = None
    status: str | None = None
    extra: list[tuple[str, str]] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return f"{self.before}{self.object_words}{self.after}"


def _value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_value(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}={_value(item)}" for key, item in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _label(event: AuditEvent) -> str:
    return FROZEN_STATUS.sub("", event.target_label)


def _number(event: AuditEvent, detail: dict) -> str:
    """"#3": the owner's number for the object, as the event kept it; the id for an event from before numbers."""
    number = detail.get("number") or event.target_id
    return f"#{number}" if number else ""


def _numbered(detail: dict, key: str) -> str:
    """"#3" for detail that names an object (NUMBER_OF): by its number when the event kept it, else by id."""
    return f"#{detail.get(NUMBER_OF.get(key, '')) or detail[key]}"


def _via(detail: dict) -> str:
    via = detail.get("via")
    return f" (in the {'API' if via == 'api' else via})" if via in {"api", "browser"} else ""


def _build(event: AuditEvent, detail: dict) -> tuple[str, str, str]:
    repository = detail.get("repository")
    if event.target_id:
        words = f"build {_number(event, detail)}" + (f" of {repository}" if repository else "")
    else:
        words = _label(event)
    tags = detail.get("tags")
    return "", words, f" ({_value(tags)})" if tags else ""


def _deployment(event: AuditEvent, detail: dict) -> tuple[str, str, str]:
    name = detail.get("name") or _label(event)
    number = _number(event, detail)
    words = f"{name} {number}".strip() if event.target_id and not name.endswith(number) else name
    image = detail.get("image")
    hosts = detail.get("hosts")
    return "", words, (f" with {image}" if image else "") + (f" on {_value(hosts)}" if hosts else "")


def _scale(event: AuditEvent, detail: dict) -> tuple[str, str, str]:
    # "alice scaled web #6 to 5 replicas on swarm"
    before, words, _ = _deployment(event, detail)
    replicas, hosts = detail.get("replicas"), detail.get("hosts")
    return before, words, (f" to {_value(replicas)} replica(s)" if not _empty(replicas) else "") + (
        f" on {_value(hosts)}" if hosts else "")


def _push(event: AuditEvent, detail: dict) -> tuple[str, str, str]:
    image, registry = detail.get("image"), detail.get("registry")
    repository, tag = detail.get("repository"), detail.get("tag")
    words = f"push {_number(event, detail)}".strip()
    target = f"{repository}:{tag}" if repository and tag else repository or ""
    after = (f" of {image}" if image else "") + (f" to {target}" if target else "")
    return "", words, after + (f" on {registry}" if registry else "")


def _pull(event: AuditEvent, detail: dict) -> tuple[str, str, str]:
    reference, registry = detail.get("reference"), detail.get("registry")
    return "", f"pull {_number(event, detail)}".strip(), (f" of {reference}" if reference else "") + (
        f" from {registry}" if registry else "")


def _plain(noun: str) -> Callable[[AuditEvent, dict], tuple[str, str, str]]:
    def words(event: AuditEvent, detail: dict) -> tuple[str, str, str]:
        return (f"{noun} " if noun else ""), _label(event), ""
    return words


def _source(event: AuditEvent, detail: dict) -> tuple[str, str, str]:
    repository = detail.get("repository")
    return "source ", _label(event), f" to {repository}" if repository else ""


def _nothing(event: AuditEvent, detail: dict) -> tuple[str, str, str]:
    return "", "", ""


# action -> (verb phrase, how the object is named). The actor's name comes first: "alice " + verb + object.
SENTENCES: dict[str, tuple[str, Callable[[AuditEvent, dict], tuple[str, str, str]]]] = {
    Action.SIGNUP: ("signed up", _nothing),
    Action.SIGNIN: ("signed in", _nothing),
    Action.SIGNOUT: ("signed out", _nothing),
    Action.PASSWORD_CHANGED: ("changed their password", _nothing),
    Action.TOKEN_CREATED: ("created the access token ", _plain("")),
    Action.TOKEN_REVOKED: ("revoked the access token ", _plain("")),
    Action.REPOSITORY_CREATED: ("created the repository ", _plain("")),
    Action.REPOSITORY_UPDATED: ("changed the repository ", _plain("")),
    Action.REPOSITORY_DELETED: ("deleted the repository ", _plain("")),
    Action.SOURCE_ADDED: ("added the ", _source),
    Action.SOURCE_DELETED: ("deleted the ", _source),
    Action.BUILD_STARTED: ("started ", _build),
    Action.BUILD_CANCELLED: ("cancelled ", _build),
    Action.REGISTRY_CREATED: ("added the registry ", _plain("")),
    Action.REGISTRY_UPDATED: ("changed the registry ", _plain("")),
    Action.REGISTRY_DELETED: ("deleted the registry ", _plain("")),
    Action.PUSH_STARTED: ("started ", _push),
    Action.PULL_STARTED: ("started ", _pull),
    Action.REGISTRY_REPOSITORY_PUBLIC: ("made the registry repository ", _plain("")),
    Action.REGISTRY_REPOSITORY_PRIVATE: ("made the registry repository ", _plain("")),
    Action.HOST_CREATED: ("added the host ", _plain("")),
    Action.HOST_UPDATED: ("changed the host ", _plain("")),
    Action.HOST_DELETED: ("deleted the host ", _plain("")),
    Action.NODE_AVAILABILITY_SET: ("set the availability of a swarm node of the host ", _plain("")),
    Action.DEPLOY_STARTED: ("deployed ", _deployment),
    Action.ROLLBACK: ("rolled back ", _deployment),
    Action.SCALE: ("scaled ", _scale),
    Action.SERVICE_REMOVED: ("removed the swarm service of ", _deployment),
    Action.RELEASE_DECLINED: ("declined a new release of ", _deployment),
    Action.CONTAINER_STOPPED: ("stopped the container ", _plain("")),
    Action.CONTAINER_REMOVED: ("removed the container ", _plain("")),
}
# The rest of the sentence after the object, for actions whose meaning needs it.
ENDINGS = {
    Action.REGISTRY_REPOSITORY_PUBLIC: " public",
    Action.REGISTRY_REPOSITORY_PRIVATE: " private",
}
# The detail each action's sentence already tells (left out of the extra facts).
USED_DETAIL = {
    Action.BUILD_STARTED: {"repository", "tags"},
    Action.SOURCE_ADDED: {"repository"},
    Action.SOURCE_DELETED: {"repository"},
    Action.PUSH_STARTED: {"image", "registry", "repository", "tag"},
    Action.PULL_STARTED: {"registry", "reference"},
    Action.DEPLOY_STARTED: {"name", "image", "hosts"},
    Action.ROLLBACK: {"name", "image", "hosts"},
    Action.SCALE: {"name", "image", "hosts", "replicas"},
    Action.SERVICE_REMOVED: {"name", "image", "hosts"},
    Action.RELEASE_DECLINED: {"name", "image", "hosts"},
}
SIGNIN_FAILURES = {REASON_BAD_CREDENTIALS: "wrong username or password", REASON_LOCKED: "locked after too many tries"}


def describe_one(event: AuditEvent) -> Described:
    """The sentence of one event, without its link (the API's `summary`, and the page before links)."""
    detail = event.detail if isinstance(event.detail, dict) else {}
    actor = event.actor_name or "someone"
    if event.action == Action.SIGNIN_FAILED:
        reason = SIGNIN_FAILURES.get(detail.get("reason"), detail.get("reason") or "")
        described = Described(event, f"a sign-in as {_label(event) or actor} failed", "",
                              f" ({reason})" if reason else "")
        used = {"reason"}
    elif event.action in SENTENCES:
        verb, name = SENTENCES[event.action]
        before, words, after = name(event, detail)
        described = Described(event, f"{actor} {verb}{before}", words,
                              after + ENDINGS.get(event.action, "") + _via(detail))
        used = USED_DETAIL.get(event.action, set()) | SAID_IN_THE_SENTENCE
    else:
        # An action this version does not know (written by a newer one): its label and object, as stored.
        described = Described(event, f"{actor}: {event.action_label} ", _label(event), "")
        used = set()
    if event.action == Action.ROLLBACK and not _empty(detail.get("release")):
        # "alice rolled back web #5 to release #3 with shop:1 on h1": the release it went back to first.
        described.after = f" to release {_numbered(detail, 'release')}{described.after}"
        used = used | {"release"}
    used = used | set(NUMBER_OF.values())
    described.extra = [(key.replace("_", " "), _numbered(detail, key) if key in NUMBER_OF else _value(value))
                       for key, value in detail.items() if key not in used and not _empty(value)]
    return described


def summary(event: AuditEvent) -> str:
    return describe_one(event).summary


def _visible(model, viewer):
    """What `viewer` may open of `model`: the model's own for_user, which its pages use too."""
    manager = model.objects
    return manager.for_user(viewer) if hasattr(manager, "for_user") else manager.filter(owner=viewer)


def describe(events: Iterable[AuditEvent], viewer) -> list[Described]:
    """The events as sentences, each linked to its object while it exists and `viewer` may see it: one query per
    kind of object among the events (at most len(DETAIL_PAGES) + len(LIST_PAGES)), whatever their number."""
    described = [describe_one(event) for event in events]
    wanted: dict[str, set[int]] = defaultdict(set)
    for item in described:
        kind, pk = item.event.target_type, item.event.target_id
        if (kind in DETAIL_PAGES or kind in LIST_PAGES) and pk.isdigit() and item.object_words:
            wanted[kind].add(int(pk))
    found: dict[str, dict[int, str | None]] = {}
    for kind, pks in wanted.items():
        try:
            model = apps.get_model(kind)
        except LookupError:
            continue
        rows = _visible(model, viewer).filter(pk__in=pks)
        has_status = any(f.name == "status" for f in model._meta.concrete_fields)
        found[kind] = dict(rows.values_list("pk", "status")) if has_status else dict.fromkeys(
            rows.values_list("pk", flat=True))
    for item in described:
        kind, pk = item.event.target_type, item.event.target_id
        if not pk.isdigit() or int(pk) not in found.get(kind, {}):
            continue
        item.status = found[kind][int(pk)]
        item.url = (reverse(DETAIL_PAGES[kind], args=[int(pk)]) if kind in DETAIL_PAGES
                    else reverse(LIST_PAGES[kind]))
    return described
