"""Login throttling: repeated failures slow down, then lock, per (username, address), per username, and per
address spraying many usernames.

Every face that checks a password goes through `authenticate()` here: the browser login form, the admin site's
login (console/accounts/forms.py AdminLoginForm), `POST /api/v1/auth/token/` and the registry's token endpoint
(`docker login`). Counters live in Django's cache, which the settings point at a table in the database or at Redis
(CACHE_URL), so every web process sees the same ones.

Usernames are counted in their canonical form (console/accountnames.py: NFKC, case folded, hashed), the form sign-in
matches them by, so `ALICE` and `ＡＬＩＣＥ` count against `alice`. The client address is
console.security.client_address. Within LOGIN_FAILURE_WINDOW seconds from the first failure of each key:
- (username, address): from LOGIN_SLOWDOWN_AFTER failures on, the next attempt must wait 1, 2, 4... seconds after
  the last failure; at LOGIN_FAILURE_LIMIT failures that username is locked *from that address*;
- username: at LOGIN_USERNAME_FAILURE_LIMIT failures from all addresses together (guessing spread over many
  addresses) the username is locked from everywhere;
- address: at LOGIN_ADDRESS_FAILURE_LIMIT *different usernames* failed from it (one address spraying passwords
  over many accounts) the address is locked for every username.
A lock lasts LOGIN_LOCK_SECONDS; every attempt is then refused before the password is even looked at, right or
wrong. Anything less than a lock does not stand in a right password's way: a few mistakes, from one address, for
other accounts (a shared office address), or for this account from elsewhere (an attacker guessing at it) cost the
owner nothing. A successful sign-in clears only its own (username, address) count: the username's total must keep
growing while someone guesses from other addresses, even if the owner signs in all along (an engine asks the
registry for a token on every pull), and one good account must not unlock an address that is guessing at others.
Nothing sleeps in the server: a throttled attempt is answered at once with the number of seconds to wait (HTTP 429
with Retry-After in the API, the registry endpoint and both login pages).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from console.accountnames import canonical, find_user
from console.security import client_address

PAIR = "pair"
USER = "user"
ADDRESS = "address"


class LoginLocked(Exception):
    """An attempt refused before its credentials were checked; `retry_after` is in whole seconds."""

    def __init__(self, retry_after: float, locked: bool) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        self.locked = locked
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if self.locked:
            minutes = math.ceil(self.retry_after / 60)
            wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
            return f"Sign-in is locked after too many failed attempts. Try again in {wait}."
        wait = f"{self.retry_after} second{'s' if self.retry_after != 1 else ''}"
        return f"Too many failed attempts: wait {wait} before trying again."


@dataclass(frozen=True)
class _Key:
    scope: str
    name: str
    limit: int
    # Whether attempts are spaced out before the lock: only per (username, address), so that guesses from
    # elsewhere never slow the owner down.
    slows: bool = False


def now() -> float:
    """The clock, one place for tests to move it."""
    return time.time()


def _username_digest(username: str) -> str:
    # Hashed: usernames are free text, and cache keys must be short and plain.
    return hashlib.sha256(canonical(username).encode()).hexdigest()[:32]


def _keys(request: HttpRequest | None, username: str) -> list[_Key]:
    digest = _username_digest(username)
    address = client_address(request) or "-"
    return [
        _Key(PAIR, f"login:pair:{digest}:{address}", settings.LOGIN_FAILURE_LIMIT, slows=True),
        _Key(USER, f"login:user:{digest}", settings.LOGIN_USERNAME_FAILURE_LIMIT),
        _Key(ADDRESS, f"login:address:{address}", settings.LOGIN_ADDRESS_FAILURE_LIMIT),
    ]


def check(request: HttpRequest | None, username: str) -> None:
    """Raise LoginLocked when `username` may not try now from the client's address."""
    moment = now()
    waits: list[LoginLocked] = []
    for key in _keys(request, username):
        state = cache.get_many([f"{key.name}:lock", f"{key.name}:n", f"{key.name}:last"])
        lock_until = state.get(f"{key.name}:lock")
        if lock_until and lock_until > moment:
            waits.append(LoginLocked(lock_until - moment, locked=True))
            continue
        if not key.slows:
            continue
        failures = state.get(f"{key.name}:n", 0)
        last = state.get(f"{key.name}:last")
        if last and failures >= settings.LOGIN_SLOWDOWN_AFTER:
            delay = min(2 ** (failures - settings.LOGIN_SLOWDOWN_AFTER), settings.LOGIN_LOCK_SECONDS)
            if last + delay > moment:
                waits.append(LoginLocked(last + delay - moment, locked=False))
    if waits:
        raise max(waits, key=lambda wait: (wait.locked, wait.retry_after))


def _count(key: _Key, moment: float) -> int:
    """One more failure for `key` within its window; returns the new count."""
    window = settings.LOGIN_FAILURE_WINDOW
    cache.add(f"{key.name}:first", moment, window)
    first = cache.get(f"{key.name}:first", moment)
    remaining = max(1, math.ceil(first + window - moment))
    cache.add(f"{key.name}:n", 0, remaining)
    try:
        failures = cache.incr(f"{key.name}:n")
    except ValueError:
        # Expired between add and incr.
        failures = 1
        cache.set(f"{key.name}:n", failures, remaining)
    # The database cache's incr rewrites the value with the default timeout: put the window's end back.
    cache.touch(f"{key.name}:n", remaining)
    cache.set(f"{key.name}:last", moment, remaining)
    return failures


def record_failure(request: HttpRequest | None, username: str) -> None:
    moment = now()
    for key in _keys(request, username):
        if key.scope == ADDRESS:
            # Counted once per username within the address's window: a marker that lives as long as that window.
            window = settings.LOGIN_FAILURE_WINDOW
            first = cache.get(f"{key.name}:first") or moment
            remaining = max(1, math.ceil(first + window - moment))
            if not cache.add(f"{key.name}:seen:{_username_digest(username)}", 1, remaining):
                continue
        failures = _count(key, moment)
        if failures >= key.limit:
            cache.set(f"{key.name}:lock", moment + settings.LOGIN_LOCK_SECONDS, settings.LOGIN_LOCK_SECONDS)


def reset(request: HttpRequest | None, username: str) -> None:
    """Forget the failures of `username` from the client's address (after a successful sign-in there)."""
    (key,) = [key for key in _keys(request, username) if key.scope == PAIR]
    cache.delete_many([f"{key.name}:{part}" for part in ("n", "first", "last", "lock")])


def authenticate(
    request: HttpRequest | None,
    username: str,
    check_credentials: Callable[[], object | None],
    *,
    via: str,
    audit_success: bool = True,
):
    """The user `check_credentials()` returns, or None when the credentials are wrong; raises LoginLocked
    (without calling `check_credentials`) while the username or the address is throttled.

    Failures, refusals and (when `audit_success`) successes go to the audit log with `via` ("browser", "api",
    "registry"); the secret never leaves `check_credentials`.
    """
    from console.audit.constants import REASON_BAD_CREDENTIALS, REASON_LOCKED, Action
    from console.audit.services import record

    try:
        check(request, username)
    except LoginLocked as exc:
        record(_account(username), Action.SIGNIN_FAILED, target=username.replace("\x00", "\ufffd"),
               detail={"via": via, "reason": REASON_LOCKED, "retry_after": exc.retry_after}, request=request)
        raise
    # No account name holds a NUL (the database could not even look one up): wrong without asking.
    user = None if "\x00" in username else check_credentials()
    if user is None:
        record_failure(request, username)
        record(_account(username), Action.SIGNIN_FAILED, target=username.replace("\x00", "\ufffd"),
               detail={"via": via, "reason": REASON_BAD_CREDENTIALS}, request=request)
        return None
    reset(request, username)
    if audit_success:
        record(user, Action.SIGNIN, target=user, detail={"via": via}, request=request)
    return user


def _account(username: str):
    """The account a failed attempt was aimed at, if there is one: its owner should see the attempt."""
    return find_user(username)
