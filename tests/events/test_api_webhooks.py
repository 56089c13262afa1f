"""/api/v1/webhooks/ and /api/v1/events/: the caller's own only, the secret never answered."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from console.events import services
from console.events.constants import EventKind
from console.events.models import Delivery, Webhook

pytestmark = pytest.mark.django_db

PUBLIC = "https://93.184.216.34/hook"


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr("console.jobs.enqueue.send", lambda name, *args, **options: "t")


@pytest.fixture
def outsider_api(outsider) -> APIClient:
    client = APIClient()
    client.force_authenticate(outsider)
    return client


def create(api, **fields):
    return api.post("/api/v1/webhooks/", {"url": PUBLIC, "events": ["image.pushed"], "secret": "long enough",
                                          **fields}, format="json")


def test_it_creates_lists_patches_and_deletes(owner_api):
    created = create(owner_api, repository="alice/app")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert set(body) == {"id", "url", "events", "repository", "active", "created"}
    listed = owner_api.get("/api/v1/webhooks/").json()
    assert [item["id"] for item in listed["results"]] == [body["id"]]
    patched = owner_api.patch(f"/api/v1/webhooks/{body['id']}/", {"events": ["build.finished", "image.deleted"],
                                                                  "secret": "a new secret"}, format="json")
    assert patched.status_code == 200, patched.json()
    assert patched.json()["events"] == ["build.finished", "image.deleted"] and "secret" not in patched.json()
    assert Webhook.objects.get().secret == "a new secret"
    assert owner_api.delete(f"/api/v1/webhooks/{body['id']}/").status_code == 204
    assert not Webhook.objects.exists()


def test_it_refuses_bad_input_with_a_400(owner_api, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    assert create(owner_api, url="http://127.0.0.1/x").status_code == 400
    assert create(owner_api, events=["nope"]).json() == {"events": [
        "Unknown event 'nope'; the events are " + ", ".join(EventKind.values) + "."]}
    assert "secret" in create(owner_api, secret=None).json()
    assert owner_api.put("/api/v1/webhooks/1/", {}, format="json").status_code == 405


def test_an_outsider_sees_nothing_of_it(owner, owner_api, outsider_api):
    webhook_id = create(owner_api).json()["id"]
    event = services.record(owner, EventKind.IMAGE_PUSHED, key="k", repository="alice/app")
    delivery = Delivery.objects.get()
    assert outsider_api.get("/api/v1/webhooks/").json()["count"] == 0
    assert outsider_api.get(f"/api/v1/webhooks/{webhook_id}/").status_code == 404
    assert outsider_api.patch(f"/api/v1/webhooks/{webhook_id}/", {"url": PUBLIC}, format="json").status_code == 404
    assert outsider_api.delete(f"/api/v1/webhooks/{webhook_id}/").status_code == 404
    assert outsider_api.get(f"/api/v1/webhooks/{webhook_id}/deliveries/").status_code == 404
    assert outsider_api.post(
        f"/api/v1/webhooks/{webhook_id}/deliveries/{delivery.pk}/redeliver/").status_code == 404
    assert outsider_api.get("/api/v1/events/").json()["count"] == 0
    assert outsider_api.get(f"/api/v1/events/{event.pk}/").status_code == 404
    assert APIClient().get("/api/v1/events/").status_code == 401


def test_deliveries_list_and_redeliver(owner, owner_api):
    webhook_id = create(owner_api).json()["id"]
    services.record(owner, EventKind.IMAGE_PUSHED, key="k", repository="alice/app", data={"tag": "1"})
    listed = owner_api.get(f"/api/v1/webhooks/{webhook_id}/deliveries/").json()
    assert listed["count"] == 1
    item = listed["results"][0]
    assert item["status"] == "queued" and item["event"]["kind"] == "image.pushed" and item["attempts"] == []
    # Still being tried: not yet.
    assert owner_api.post(f"/api/v1/webhooks/{webhook_id}/deliveries/{item['id']}/redeliver/").status_code == 409
    Delivery.objects.update(status="failed")
    again = owner_api.post(f"/api/v1/webhooks/{webhook_id}/deliveries/{item['id']}/redeliver/")
    assert again.status_code == 202 and again.json()["redelivery_of"] == item["id"]


def test_events_are_the_callers_own_and_filter_by_kind(owner, outsider, owner_api):
    services.record(owner, EventKind.IMAGE_PUSHED, key="a", repository="alice/app", data={"tag": "1"})
    services.record(owner, EventKind.BUILD_FINISHED, key="b", repository="shop")
    services.record(outsider, EventKind.IMAGE_PUSHED, key="c", repository="mallory/app")
    listed = owner_api.get("/api/v1/events/").json()
    assert [item["kind"] for item in listed["results"]] == ["build.finished", "image.pushed"]
    assert set(listed["results"][1]) == {"id", "kind", "repository", "data", "created"}
    only = owner_api.get("/api/v1/events/?kind=image.pushed").json()
    assert [item["repository"] for item in only["results"]] == ["alice/app"]
    assert owner_api.get("/api/v1/events/?kind=nope").status_code == 400
