"""Webhook deliveries sent by a real Celery worker to a receiver on 127.0.0.1 (staff may aim there): signed, tried
again after a 500 with backoff, listed with their attempts, redelivered; a plain user may not aim there at all."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from rest_framework.test import APIClient

from console.events import services
from console.events.constants import EventKind
from console.events.models import Delivery
from tests.fixtures.worker import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SECRET = "receiver-shared-secret"


def _verify(request: dict) -> dict:
    """What a receiver does: the signature over the raw body, with the shared secret."""
    expected = "sha256=" + hmac.new(SECRET.encode(), request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request["headers"]["X-Console-Signature"], expected)
    assert request["headers"]["X-Console-Timestamp"].isdigit()
    assert request["headers"]["Content-Type"] == "application/json"
    return json.loads(request["body"])


def _final(api: APIClient, webhook_id: int, delivery_id: int) -> dict:
    def done():
        body = api.get(f"/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/").json()
        return body if body["status"] in ("succeeded", "failed") else None
    return wait_for(done, timeout=60, message="the delivery to end")


def test_it_signs_retries_after_a_500_and_redelivers(worker, receiver, staff_api, staff, settings):
    created = staff_api.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["image.pushed"],
                                                  "secret": SECRET}, format="json")
    assert created.status_code == 201, created.json()
    assert "secret" not in created.json()
    webhook_id = created.json()["id"]
    receiver.answers = [500]
    event = services.record(staff, EventKind.IMAGE_PUSHED, key="test:one", repository="root/app",
                            data={"tag": "1", "digest": "sha256:" + "a" * 64})
    first, second = receiver.wait_for(2)
    body = _verify(first)
    assert _verify(second) == body
    assert body["id"] == event.pk and body["type"] == "image.pushed" and body["data"]["tag"] == "1"
    assert first["headers"]["X-Console-Delivery"] == second["headers"]["X-Console-Delivery"]
    assert first["headers"]["X-Console-Event"] == "image.pushed"
    # The backoff: at least the base (one second here) between the attempts.
    assert second["at"] - first["at"] >= 0.9
    listed = staff_api.get(f"/api/v1/webhooks/{webhook_id}/deliveries/").json()
    assert listed["count"] == 1
    delivery = _final(staff_api, webhook_id, listed["results"][0]["id"])
    assert delivery["status"] == "succeeded"
    assert [(a["number"], a["status_code"]) for a in delivery["attempts"]] == [(1, 500), (2, 200)]
    assert delivery["uid"] == first["headers"]["X-Console-Delivery"]
    again = staff_api.post(f"/api/v1/webhooks/{webhook_id}/deliveries/{delivery['id']}/redeliver/")
    assert again.status_code == 202, again.json()
    third = receiver.wait_for(3)[2]
    assert _verify(third) == body
    assert third["headers"]["X-Console-Delivery"] != first["headers"]["X-Console-Delivery"]
    assert _final(staff_api, webhook_id, again.json()["id"])["status"] == "succeeded"
    assert Delivery.objects.count() == 2


def test_a_receiver_that_keeps_failing_is_given_up_on(worker, receiver, staff_api, staff):
    created = staff_api.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["build.finished"],
                                                  "secret": SECRET}, format="json").json()
    receiver.answers = [500, 503, 500, 500]
    services.record(staff, EventKind.BUILD_FINISHED, key="test:two", data={"status": "succeeded"})
    delivery = Delivery.objects.get(webhook_id=created["id"])
    final = _final(staff_api, created["id"], delivery.pk)
    # The worker's WEBHOOK_MAX_ATTEMPTS is 3.
    assert final["status"] == "failed" and final["attempt_count"] == 3
    assert [a["status_code"] for a in final["attempts"]] == [500, 503, 500]
    assert len(receiver.requests) == 3


def test_a_plain_user_may_not_aim_a_webhook_at_the_receiver(receiver, owner_api, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    refused = owner_api.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["image.pushed"],
                                                  "secret": SECRET}, format="json")
    assert refused.status_code == 400
    assert "loopback" in refused.json()["url"][0]
    assert receiver.requests == []
