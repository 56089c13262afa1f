"""console/throttle.py against the configured cache (the database cache table in the test database)."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from django.core.cache import cache
from django.test import RequestFactory

from console import throttle
from console.audit.models import AuditEvent


class Clock:
    def __init__(self) -> None:
        self.time = time.time()

    def __call__(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += seconds


@pytest.fixture
def clock(monkeypatch, db) -> Clock:
    clock = Clock()
    monkeypatch.setattr(throttle, "now", clock)
    return clock


@pytest.fixture(autouse=True)
def limits(settings):
    settings.LOGIN_FAILURE_LIMIT = 5
    settings.LOGIN_USERNAME_FAILURE_LIMIT = 12
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 8
    settings.LOGIN_FAILURE_WINDOW = 900
    settings.LOGIN_LOCK_SECONDS = 900
    settings.LOGIN_SLOWDOWN_AFTER = 3
    settings.TRUSTED_PROXY_COUNT = 0


def request_from(address: str):
    return RequestFactory().post("/accounts/login/", REMOTE_ADDR=address)


def fail(request, username: str, times: int, clock: Clock, step: float = 60) -> None:
    for _ in range(times):
        throttle.record_failure(request, username)
        clock.advance(step)


def test_the_first_failures_cost_nothing(clock):
    request = request_from("10.0.0.1")
    fail(request, "alice", 2, clock)
    clock.advance(-60)
    throttle.check(request, "alice")


def test_from_the_slowdown_threshold_each_attempt_waits_longer(clock):
    request = request_from("10.0.0.1")
    for _ in range(3):
        throttle.record_failure(request, "alice")
    with pytest.raises(throttle.LoginLocked) as first:
        throttle.check(request, "alice")
    assert not first.value.locked and first.value.retry_after == 1
    assert "wait 1 second" in first.value.message
    clock.advance(1.5)
    throttle.check(request, "alice")
    throttle.record_failure(request, "alice")
    with pytest.raises(throttle.LoginLocked) as second:
        throttle.check(request, "alice")
    assert second.value.retry_after == 2


def test_at_the_limit_the_username_is_locked_from_that_address_until_the_lock_ends(clock):
    here = request_from("10.0.0.1")
    fail(here, "alice", 5, clock)
    with pytest.raises(throttle.LoginLocked) as locked:
        throttle.check(here, "alice")
    assert locked.value.locked
    # The lock started with the fifth failure, one clock step ago.
    assert locked.value.retry_after == 900 - 60
    assert "Try again in 14 minutes" in locked.value.message
    # Another account from the same address, and the same account from elsewhere, are not held up.
    throttle.check(here, "bob")
    throttle.check(request_from("10.9.9.9"), "alice")
    clock.advance(900)
    # The lock is over (its failures still count until their window ends, so one more would lock again).
    throttle.check(here, "alice")


def test_failures_count_per_username_and_address(clock):
    fail(request_from("10.0.0.1"), "alice", 4, clock)
    fail(request_from("10.0.0.2"), "alice", 4, clock)
    # Four from each address: neither pair reached five, so neither is locked.
    throttle.check(request_from("10.0.0.1"), "alice")
    throttle.check(request_from("10.0.0.2"), "alice")
    fail(request_from("10.0.0.1"), "alice", 1, clock)
    with pytest.raises(throttle.LoginLocked):
        throttle.check(request_from("10.0.0.1"), "alice")
    throttle.check(request_from("10.0.0.2"), "alice")


def test_the_slowdown_holds_only_the_address_that_failed(clock):
    for _ in range(3):
        throttle.record_failure(request_from("10.0.0.1"), "alice")
    with pytest.raises(throttle.LoginLocked):
        throttle.check(request_from("10.0.0.1"), "alice")
    throttle.check(request_from("10.0.0.2"), "alice")


def test_guessing_spread_over_many_addresses_locks_the_username_everywhere(clock):
    for number in range(12):
        fail(request_from(f"10.0.1.{number}"), "alice", 1, clock)
    with pytest.raises(throttle.LoginLocked) as locked:
        throttle.check(request_from("10.9.9.9"), "alice")
    assert locked.value.locked
    throttle.check(request_from("10.9.9.9"), "bob")


def test_the_username_is_matched_without_regard_to_case_spaces_or_compatibility_forms(clock):
    here = request_from("10.0.0.1")
    fail(here, "Alice", 2, clock)
    fail(here, "ＡＬＩＣＥ", 3, clock)
    with pytest.raises(throttle.LoginLocked):
        throttle.check(here, " alice ")


def test_an_address_guessing_at_many_usernames_is_locked(clock):
    request = request_from("10.0.0.1")
    for number in range(8):
        throttle.record_failure(request, f"user{number}")
    with pytest.raises(throttle.LoginLocked) as locked:
        throttle.check(request, "someone-new")
    assert locked.value.locked
    throttle.check(request_from("10.0.0.2"), "someone-new")


def test_an_address_counts_usernames_not_attempts(clock, settings):
    settings.LOGIN_FAILURE_LIMIT = 100
    request = request_from("10.0.0.1")
    # Within the window on the test's clock: past it, the cache's real-time expiry (a second) would race the test.
    for number in range(7):
        fail(request, f"user{number}", 3, clock, step=5)
    # Twenty-one failures, seven usernames: under the limit of eight usernames.
    throttle.check(request, "someone-new")
    fail(request, "user7", 1, clock, step=5)
    with pytest.raises(throttle.LoginLocked):
        throttle.check(request, "someone-new")


def test_behind_a_proxy_the_forwarded_address_is_the_one_counted(clock, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for number in range(8):
        forwarded = f"1.1.1.{number}, 192.0.2.9"
        proxied = RequestFactory().post("/", REMOTE_ADDR="10.0.0.254", HTTP_X_FORWARDED_FOR=forwarded)
        throttle.record_failure(proxied, f"user{number}")
    other_client = RequestFactory().post("/", REMOTE_ADDR="10.0.0.254", HTTP_X_FORWARDED_FOR="192.0.2.10")
    throttle.check(other_client, "someone-new")
    same_client = RequestFactory().post("/", REMOTE_ADDR="10.0.0.254", HTTP_X_FORWARDED_FOR="192.0.2.9")
    with pytest.raises(throttle.LoginLocked):
        throttle.check(same_client, "someone-new")


def test_a_success_clears_its_own_count_only(clock, owner, settings):
    settings.LOGIN_USERNAME_FAILURE_LIMIT = 13
    here, elsewhere = request_from("10.0.0.1"), request_from("10.0.0.2")
    fail(here, "alice", 4, clock)
    fail(elsewhere, "alice", 4, clock)
    assert throttle.authenticate(here, "alice", lambda: owner, via="test") == owner
    fail(here, "alice", 4, clock)
    throttle.check(here, "alice")
    # The success here did not forgive the failures elsewhere: one more locks that address out of alice.
    fail(elsewhere, "alice", 1, clock)
    with pytest.raises(throttle.LoginLocked):
        throttle.check(elsewhere, "alice")
    # Nor the username's total: 4 + 4 + 4 + 1 = 13 failures lock alice everywhere.
    with pytest.raises(throttle.LoginLocked):
        throttle.check(request_from("10.0.0.3"), "alice")


def test_a_success_does_not_unlock_a_spraying_address(clock, owner, settings):
    request = request_from("10.0.0.1")
    for number in range(7):
        throttle.record_failure(request, f"user{number}")
    assert throttle.authenticate(request, "alice", lambda: owner, via="test") == owner
    throttle.record_failure(request, "user7")
    with pytest.raises(throttle.LoginLocked):
        throttle.check(request, "carol")


def test_authenticate_refuses_without_checking_the_credentials_while_locked(clock, owner):
    request = request_from("10.0.0.1")
    calls = []
    for _ in range(5):
        assert throttle.authenticate(request, "alice", lambda: calls.append(1), via="test") is None
        clock.advance(60)
    with pytest.raises(throttle.LoginLocked):
        throttle.authenticate(request, "alice", lambda: calls.append("checked") or owner, via="test")
    assert calls == [1] * 5
    reasons = list(AuditEvent.objects.filter(action="signin_failed").values_list("detail__reason", flat=True))
    assert reasons.count("bad_credentials") == 5 and reasons.count("locked") == 1


def test_failures_outside_the_window_are_forgotten(db, settings):
    settings.LOGIN_FAILURE_WINDOW = 1
    request = request_from("10.0.0.1")
    for _ in range(4):
        throttle.record_failure(request, "alice")
    deadline = time.monotonic() + 5
    while cache.get(f"{throttle._keys(request, 'alice')[0].name}:n") is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    throttle.record_failure(request, "alice")
    throttle.check(request, "alice")


def test_it_locks_through_a_shared_redis_cache(clock, settings):
    """CACHE_URL=redis://...: the counters every web process shares, with the window kept as Redis TTLs."""
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("the tests run with a Redis broker (scripts/test.sh); this one uses its database")
    prefix = f"throttle-test-{uuid.uuid4().hex}"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": settings.CELERY_BROKER_URL, "KEY_PREFIX": prefix}}
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        request = request_from("10.0.0.1")
        fail(request, "alice", 4, clock)
        # One counter per (username, address), per username and per address, each expiring with its window.
        counter = [key for key in client.scan_iter(f"{prefix}:*") if key.endswith(b":n")]
        assert len(counter) == 3 and all(0 < client.ttl(key) <= 900 for key in counter)
        throttle.check(request, "alice")
        fail(request, "alice", 1, clock)
        with pytest.raises(throttle.LoginLocked) as locked:
            throttle.check(request, "alice")
        assert locked.value.locked
        throttle.check(request_from("10.0.0.2"), "alice")
        throttle.reset(request, "alice")
        throttle.check(request, "alice")
    finally:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
