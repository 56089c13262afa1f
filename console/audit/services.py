"""The audit log: one function writes every event, whichever face (browser, API, worker) the action came from.

    from console.audit.constants import Action
    from console.audit.services import record
    record(request.user, Action.REGISTRY_CREATED, target=registry, detail={"kind": registry.kind}, request=request)

`detail` must never hold a secret; as a safety net, values under keys that name one (password, secret, token,
key, ...) and strings shaped like an access token are stored as "[redacted]". A target numbered per user
(console/numbering.py) adds its `number` to `detail`, for the sentence that names it (console/audit/words.py).
"""

from __future__ import annotations

import re
from typing import Any

from django.db import models
from django.http import HttpRequest

from console.audit.constants import Action
from console.audit.models import AuditEvent
from console.numbering import NumberedPerOwner
from console.security import client_address

REDACTED = "[redacted]"
SECRET_KEY_PATTERN = re.compile(r"pass|secret|token|key|credential|authori[sz]ation|cookie|session", re.IGNORECASE)
# Personal access tokens (console/accounts/services.py) and anything JWT-shaped.
SECRET_VALUE_PATTERN = re.compile(r"^(cst_[A-Za-z0-9_-]{16,}|eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$")
LABEL_LENGTH = AuditEvent._meta.get_field("target_label").max_length
NAME_LENGTH = AuditEvent._meta.get_field("actor_name").max_length


def record(
    actor,
    action: str,
    target: models.Model | str = "",
    detail: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> AuditEvent:
    """Write one event. `actor` is a user (or None / an anonymous user); `target` the object acted on, or a label
    when there is no object (a username that does not exist, say); `request` gives the client address."""
    if action not in Action.values:
        raise ValueError(f"{action!r} is not an audit action; add it to console.audit.constants.Action")
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    target_type = target_id = ""
    detail = dict(detail or {})
    if isinstance(target, models.Model):
        target_type = target._meta.label_lower
        target_id = "" if target.pk is None else str(target.pk)
        label = str(target)
        if isinstance(target, NumberedPerOwner) and target.number is not None:
            # The sentence names the object as its owner knows it ("build #3"): kept as it was when written.
            detail.setdefault("number", target.number)
    else:
        label = str(target or "")
    return AuditEvent.objects.create(
        actor=user,
        actor_name=(user.get_username() if user else "")[:NAME_LENGTH],
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_label=label[:LABEL_LENGTH],
        detail=redact(detail),
        address=client_address(request),
    )


def redact(value: Any, key: str = "") -> Any:
    """`value` with every secret-looking part replaced by "[redacted]" (see the module's docstring)."""
    if key and SECRET_KEY_PATTERN.search(key):
        return REDACTED
    if isinstance(value, dict):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str) and SECRET_VALUE_PATTERN.match(value):
        return REDACTED
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def events_for(user, action: str = "") -> models.QuerySet[AuditEvent]:
    """What `user` may see, newest first, optionally of one action: the page and the API share this."""
    events = AuditEvent.objects.for_user(user).select_related("actor")
    return events.filter(action=action) if action else events
