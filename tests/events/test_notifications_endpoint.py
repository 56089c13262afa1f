"""POST /registry/notifications/: only with the registry's secret; each Distribution event once, owned by the
namespace's owner; blobs, pulls and unknown namespaces are no events."""

from __future__ import annotations

import json

import pytest

from console.events.models import Event
from registry.notifications import notification_secret

pytestmark = pytest.mark.django_db

URL = "/registry/notifications/"
DIGEST = "sha256:" + "b" * 64


def envelope(*events):
    return json.dumps({"events": list(events)})


def push(event_id="e1", repository="alice/app", tag="1", **target):
    return {"id": event_id, "action": "push", "timestamp": "2026-12-02T10:00:00Z", "actor": {"name": "alice"},
            "target": {"repository": repository, "tag": tag, "digest": DIGEST,
                       "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 527, **target}}


def post(client, body, secret=None):
    return client.post(URL, body, content_type="application/vnd.docker.distribution.events.v1+json",
                       HTTP_AUTHORIZATION=f"Bearer {secret or notification_secret()}")


def test_it_records_a_push_once_however_often_it_is_sent(client, owner):
    assert post(client, envelope(push())).json() == {"recorded": 1}
    assert post(client, envelope(push())).json() == {"recorded": 0}
    [event] = Event.objects.all()
    assert event.owner == owner and event.kind == "image.pushed" and event.repository == "alice/app"
    assert event.data["tag"] == "1" and event.data["digest"] == DIGEST and event.data["size"] == 527


def test_a_delete_is_image_deleted(client, owner):
    delete = {"id": "d1", "action": "delete", "target": {"repository": "alice/app", "digest": DIGEST}}
    assert post(client, envelope(delete)).json() == {"recorded": 1}
    assert Event.objects.get().kind == "image.deleted"


def test_blobs_pulls_and_strangers_are_not_events(client, owner):
    events = [push("b1", tag="", mediaType="application/octet-stream"), {**push("p1"), "action": "pull"},
              push("n1", repository="nobody/app"), push("c1", repository="console-cache/x"),
              push("u1", repository="Alice/app"), "junk", {"id": "x"}]
    assert post(client, envelope(*events)).json() == {"recorded": 0}
    assert post(client, "not json").status_code == 200
    assert not Event.objects.exists()


def test_without_the_secret_it_is_refused(client, owner):
    assert post(client, envelope(push()), secret="guess").status_code == 401
    assert client.post(URL, envelope(push()), content_type="application/json").status_code == 401
    assert client.get(URL).status_code == 405
    assert not Event.objects.exists()
