"""console.audit.services.record: one row per event, with no secret in it."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from console.accounts.services import create_access_token
from console.audit.constants import Action
from console.audit.models import AuditEvent
from console.audit.services import REDACTED, events_for, record, redact


def test_it_records_the_actor_the_target_object_the_detail_and_the_address(owner):
    token, _ = create_access_token(owner, "ci")
    request = RequestFactory().post("/", REMOTE_ADDR="192.0.2.4")
    event = record(owner, Action.TOKEN_CREATED, target=token, detail={"via": "api"}, request=request)
    event.refresh_from_db()
    assert (event.actor, event.actor_name, event.action) == (owner, "alice", "token_created")
    assert (event.target_type, event.target_id) == ("accounts.accesstoken", str(token.pk))
    assert event.target_label == str(token)
    assert event.detail == {"via": "api"}
    assert event.address == "192.0.2.4"
    assert event.action_label == "Access token created"


def test_a_text_target_and_an_anonymous_actor_are_fine(db):
    event = record(AnonymousUser(), Action.SIGNIN_FAILED, target="nobody")
    assert event.actor is None and event.actor_name == ""
    assert (event.target_type, event.target_id, event.target_label) == ("", "", "nobody")
    assert event.address is None
    assert record(None, Action.SIGNIN_FAILED).target_label == ""


def test_it_refuses_an_action_that_is_not_a_constant(owner):
    with pytest.raises(ValueError, match="not an audit action"):
        record(owner, "did_something")
    assert not AuditEvent.objects.exists()


def test_secrets_in_the_detail_are_redacted_at_any_depth(owner):
    _, raw = create_access_token(owner, "ci")
    detail = {"name": "ci", "password": "hunter2", "nested": {"api_key": "k", "Secret": "s", "ok": [raw, 1, None]},
              "Authorization": "Basic abc", "count": 3, "when": object}
    event = record(owner, Action.REGISTRY_CREATED, detail=detail)
    event.refresh_from_db()
    assert event.detail == {"name": "ci", "password": REDACTED, "nested": {"api_key": REDACTED, "Secret": REDACTED,
                            "ok": [REDACTED, 1, None]}, "Authorization": REDACTED, "count": 3,
                            "when": str(object)}
    assert raw not in str(AuditEvent.objects.values_list())


def test_a_jwt_value_is_redacted():
    assert redact({"value": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"}) == {"value": REDACTED}
    assert redact({"image": "alice/app:1"}) == {"image": "alice/app:1"}


def test_the_username_stays_when_the_account_is_deleted(owner):
    record(owner, Action.SIGNOUT)
    owner.delete()
    event = AuditEvent.objects.get()
    assert event.actor is None and event.actor_name == "alice"


def test_users_see_their_own_events_and_staff_see_all(owner, outsider):
    record(owner, Action.SIGNIN)
    record(outsider, Action.SIGNIN)
    record(owner, Action.SIGNOUT)
    assert [event.action for event in events_for(owner)] == ["signout", "signin"]
    assert list(events_for(owner, "signin").values_list("actor_name", flat=True)) == ["alice"]
    assert events_for(AnonymousUser()).count() == 0
    staff = get_user_model().objects.create_user("root", "root@example.com", "x", is_staff=True)
    assert events_for(staff).count() == 3
