"""Which account a typed name means: the one rule that sign-up, sign-in and the login throttle share.

Two usernames are the same account when they are equal without regard to case or Unicode compatibility forms
(`ＡＬＩＣＥ`, `Alice` and `alice` are one name). Input is NFKC-normalised before anything else looks at it. What a
new username may be, and the database's unique index that backs this rule, are in console/accounts/usernames.py,
which re-exports these names; the login throttle (console/throttle.py) counts failures per canonical name.

A module of its own, below both: console.accounts imports the throttle (its login forms and token endpoint go
through it), so the throttle must not import console.accounts back.
"""

from __future__ import annotations

import unicodedata

from django.contrib.auth import get_user_model


def normalise(raw: str) -> str:
    """The username as it is stored and checked: surrounding spaces dropped, NFKC-normalised (as Django's own
    `AbstractBaseUser.normalize_username` does, but before the uniqueness check, not after it)."""
    return unicodedata.normalize("NFKC", raw.strip())


def canonical(name: str) -> str:
    """The key two names are compared by: equal keys are the same account (case and compatibility forms folded)."""
    return unicodedata.normalize("NFKC", normalise(name).casefold())


def find_user(raw: str):
    """The account a sign-in names, or None. The name is normalised like at sign-up; an exact match wins, then the
    one account equal without regard to case (so `alice` signs in `Alice`). Should old accounts still differ by
    case only (see migration accounts 0002), a name that is not exactly one of them matches none."""
    model = get_user_model()
    name = normalise(raw)
    if not name or "\x00" in name:
        return None
    candidates = list(model._default_manager.filter(username__iexact=name)[:10])
    exact = [user for user in candidates if user.get_username() == name]
    if exact:
        return exact[0]
    folded = [user for user in candidates if canonical(user.get_username()) == canonical(name)]
    return folded[0] if len(folded) == 1 else None
