"""What a username may be, and when two usernames are the same account.

A username is also the user's namespace in the console's registry (`registry.tokens.namespace_of`: the username
lower-cased), so two rules follow:
- a username is something a registry path component can hold once lower-cased: ASCII letters and digits, with
  single `.`, `_` or `__`, or runs of `-`, between them (Distribution's `[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*`).
  Non-ASCII letters are refused, not folded: `аlice` (a Cyrillic а) must never pass for `alice`;
- two usernames are the same account when they are equal without regard to case or Unicode compatibility forms
  (`ＡＬＩＣＥ`, `Alice` and `alice` are one name): input is NFKC-normalised *before* anything is checked, and the
  database holds a unique index on lower(username) (migration accounts 0002) so that two sign-ups racing each other
  cannot both win.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

# How a typed name is matched to an account lives below console.accounts (the login throttle needs it, and
# console.accounts imports the throttle); these names stay importable from here.
from console.accountnames import canonical as canonical
from console.accountnames import find_user as find_user
from console.accountnames import normalise as normalise

# Short enough for `<namespace>/<repository>:<tag>` to stay well inside a registry's 255-character names.
USERNAME_MAX_LENGTH = 64
# Distribution's path component, which is what the lower-cased username becomes (registry/tokens.py).
NAMESPACE_RE = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
ALLOWED_CHARACTERS_RE = re.compile(r"[A-Za-z0-9._-]+")
# The registry namespace where the build farm keeps its shared cache (builds/sharedcache.py): no account may own
# it, and the registry's token endpoint grants it to no account whatever its name (registry/tokens.py).
BUILD_CACHE_NAMESPACE = "console-cache"
# The username of the pull credential a swarm service carries (registry/tokens.py service_pull_credential): the
# token endpoint checks its password as a signature, never as an account's secret, so no account may have it.
SERVICE_PULL_NAME = "console-service-pull"
RESERVED_NAMESPACES = frozenset({BUILD_CACHE_NAMESPACE, SERVICE_PULL_NAME})
# The name of the unique index on lower(username) that migration accounts 0002 adds to auth_user.
CONSTRAINT_NAME = "accounts_username_lower_unique"
HELP_TEXT = (
    f"Up to {USERNAME_MAX_LENGTH} characters: letters a-z (any case), digits, and . _ - between them. "
    "It is also your namespace in the console's registry."
)
MESSAGE_EMPTY = "Choose a username."
MESSAGE_TOO_LONG = f"Use at most {USERNAME_MAX_LENGTH} characters."
MESSAGE_CHARACTERS = "Use only the letters a-z and A-Z, digits, and the characters . _ - (no spaces, no @ or /)."
MESSAGE_SEPARATORS = (
    "Start and end with a letter or digit, and put at most one . or _ (or a double __, or dashes) between "
    "letters and digits: the username is also a registry namespace."
)
MESSAGE_RESERVED = "This name is reserved for the console itself."
MESSAGE_TAKEN = "A user with that username already exists (usernames do not differ by case)."


def problems(name: str) -> list[str]:
    """Why `name` (already normalised) cannot be a username; empty when it can (uniqueness aside)."""
    if not name:
        return [MESSAGE_EMPTY]
    if len(name) > USERNAME_MAX_LENGTH:
        return [MESSAGE_TOO_LONG]
    if not ALLOWED_CHARACTERS_RE.fullmatch(name):
        return [MESSAGE_CHARACTERS]
    if not NAMESPACE_RE.fullmatch(name.lower()):
        return [MESSAGE_SEPARATORS]
    if name.lower() in RESERVED_NAMESPACES:
        return [MESSAGE_RESERVED]
    return []


def is_taken(name: str, *, exclude_pk: int | None = None) -> bool:
    """Whether an account already holds `name` without regard to case (`name` is normalised and ASCII here, so a
    case-insensitive comparison in the database is the whole comparison)."""
    users = get_user_model()._default_manager.filter(username__iexact=name)
    if exclude_pk is not None:
        users = users.exclude(pk=exclude_pk)
    return users.exists()


def validate_new(raw: str, *, exclude_pk: int | None = None) -> str:
    """The normalised username for a new (or renamed) account; raises ValidationError with the reasons."""
    name = normalise(raw)
    errors = problems(name)
    if errors:
        raise ValidationError(errors, code="invalid")
    if is_taken(name, exclude_pk=exclude_pk):
        raise ValidationError(MESSAGE_TAKEN, code="unique")
    return name


def same_account_name(a: str, b: str) -> bool:
    return canonical(a) == canonical(b)


@dataclass(frozen=True)
class Conflict:
    """Accounts that break the rules above: `kind` is DUPLICATE (several accounts, one name) or INVALID (a name no
    registry namespace can hold); `accounts` are (pk, username) pairs, oldest first."""

    kind: str
    accounts: tuple[tuple[int, str], ...]
    reason: str

    def describe(self) -> str:
        names = ", ".join(f"#{pk} {name!r}" for pk, name in self.accounts)
        return f"{self.kind}: {names}: {self.reason}"


DUPLICATE = "duplicate"
INVALID = "invalid"


def find_conflicts(accounts: Iterable[tuple[int, str]]) -> list[Conflict]:
    """The conflicts among existing (pk, username) rows, for the data migration and `manage.py check_usernames`."""
    groups: dict[str, list[tuple[int, str]]] = defaultdict(list)
    invalid = []
    for pk, username in sorted(accounts):
        groups[canonical(username)].append((pk, username))
        reasons = problems(normalise(username))
        if normalise(username) != username:
            reasons.insert(0, "not stored in its normalised form")
        if reasons:
            invalid.append(Conflict(INVALID, ((pk, username),), " ".join(reasons)))
    duplicates = [
        Conflict(DUPLICATE, tuple(members), "equal without regard to case or Unicode compatibility forms")
        for members in groups.values() if len(members) > 1
    ]
    return duplicates + invalid


def username_constraint():
    """The unique index on lower(username) (a UniqueConstraint, which PostgreSQL and SQLite both build)."""
    from django.db.models import UniqueConstraint
    from django.db.models.functions import Lower

    return UniqueConstraint(Lower("username"), name=CONSTRAINT_NAME)


def has_constraint(connection, table: str = "auth_user") -> bool:
    """Whether the unique index on lower(username) is in the database (it is not in Django's model state)."""
    with connection.cursor() as cursor:
        return CONSTRAINT_NAME in connection.introspection.get_constraints(cursor, table)
