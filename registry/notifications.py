"""What the console's registry tells the console: Distribution's notifications (its `notifications` endpoint in
config.yml, registry/server.py) become events (console/events) owned by the namespace's owner.

Distribution POSTs an envelope `{"events": [...]}` with the header written in its config; anyone else who can
reach the endpoint lacks it and is refused, so nobody can post a fake push. Distribution retries an envelope until
it is answered 2xx, so each event is recorded once by its id. A push of a manifest under a tag is `image.pushed`;
a delete (of a manifest, by digest, or of a tag) is `image.deleted`; blob pushes, pulls and mounts are not events
(the config asks Distribution not to send the first two). Distribution reports a blob deleted through its API as it
reports a manifest: the console never deletes a blob that way.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from django.conf import settings

from console.events.constants import EventKind
from console.events.services import record
from registry.tokens import is_build_cache, owner_of_namespace

log = logging.getLogger(__name__)

MAX_EVENTS = 1000
ID_LENGTH = 100


def notification_secret() -> str:
    """The bearer token Distribution sends (config.yml holds it): derived from SECRET_KEY, so no setting."""
    return hmac.new(settings.SECRET_KEY.encode(), b"console registry notifications", hashlib.sha256).hexdigest()


def authorised(header: str) -> bool:
    return hmac.compare_digest(header.encode(), f"Bearer {notification_secret()}".encode())


def _text(value: Any, limit: int = 255) -> str:
    return value[:limit] if isinstance(value, str) else ""


def record_envelope(envelope: Any) -> int:
    """Record the envelope's events; returns how many were new. Malformed events are skipped, not refused:
    Distribution would send a refused envelope again forever."""
    events = envelope.get("events") if isinstance(envelope, dict) else None
    if not isinstance(events, list):
        return 0
    recorded = 0
    for item in events[:MAX_EVENTS]:
        if isinstance(item, dict) and _record_one(item):
            recorded += 1
    return recorded


def _record_one(item: dict) -> bool:
    event_id, action = _text(item.get("id"), ID_LENGTH), item.get("action")
    target = item.get("target") if isinstance(item.get("target"), dict) else {}
    repository, tag = _text(target.get("repository")), _text(target.get("tag"), 128)
    digest = _text(target.get("digest"), 100)
    if not event_id or not repository or "/" not in repository or is_build_cache(repository):
        return False
    if action == "push" and tag:
        kind = EventKind.IMAGE_PUSHED
    elif action == "delete" and (tag or digest):
        kind = EventKind.IMAGE_DELETED
    else:
        return False
    owner = owner_of_namespace(repository.split("/", 1)[0])
    if owner is None:
        return False
    actor = item.get("actor") if isinstance(item.get("actor"), dict) else {}
    reference = f"{settings.REGISTRY_ADDRESS}/{repository}"
    data = {
        "repository": repository,
        "tag": tag,
        "digest": digest,
        "media_type": _text(target.get("mediaType"), 200),
        "size": target.get("size") if isinstance(target.get("size"), int) else None,
        "reference": f"{reference}:{tag}" if tag else (f"{reference}@{digest}" if digest else reference),
        "actor": _text(actor.get("name"), 150),
        "timestamp": _text(item.get("timestamp"), 64),
    }
    return record(owner, kind, key=f"registry:{event_id}", repository=repository, data=data) is not None
