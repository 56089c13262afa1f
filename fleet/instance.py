"""Which console made a container: every container a deployment runs carries this console's mark
(LABEL_CONSOLE), so that two consoles deploying to one engine never take each other's containers for their own.

Without it they would: a user's id, an app's name and a deployment's id are only unique within one console's
database, and two consoles (a second instance on the same machine, a test console beside a real one, a fresh
database after a reinstall) number their users and deployments alike. The mark is derived from SECRET_KEY with
Django's salted HMAC: the same on every worker of one console (they must share SECRET_KEY to sign anything),
different for another console, and nothing about the key can be read from it. Marks of SECRET_KEY_FALLBACKS
count as this console's too, so that rotating the key as Django documents it keeps the running containers ours.
A container deployed before the mark existed has none and counts as this console's, as it did then."""

from __future__ import annotations

from django.conf import settings
from django.utils.crypto import salted_hmac

from fleet.constants import LABEL_CONSOLE

SALT = "console.fleet.instance"


def _mark(secret: str) -> str:
    return salted_hmac(SALT, "containers", secret=secret, algorithm="sha256").hexdigest()[:16]


def console_mark() -> str:
    """The mark this console writes on the containers it creates."""
    return _mark(settings.SECRET_KEY)


def made_by_this_console(labels: dict[str, str]) -> bool:
    """Whether a container's labels say this console made it (or say nothing: a container from before the mark)."""
    mark = (labels or {}).get(LABEL_CONSOLE)
    if mark is None:
        return True
    return mark in {console_mark(), *(_mark(key) for key in getattr(settings, "SECRET_KEY_FALLBACKS", []))}
