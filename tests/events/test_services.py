"""console/events/services.py: recording once, signing, backoff, URL refusal, and the delivery runner's attempts
(with the network answer stood in for; tests/events/test_delivery_worker.py sends real requests)."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from console.constants import JobStatus
from console.errors import Conflict, DomainError
from console.events import services
from console.events.constants import EventKind
from console.events.delivery import Answer
from console.events.models import Delivery, Event, Webhook

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Deliveries are queued on commit: here they are only counted, and run by hand."""
    sent = []
    monkeypatch.setattr("console.jobs.enqueue.send", lambda name, *args, **options: sent.append((name, args,
                                                                                                 options)) or "t")
    return sent


def hook(owner, **fields) -> Webhook:
    values = {"url": "https://hooks.example.com/in", "events": [EventKind.IMAGE_PUSHED], "secret": "s3cret-value"}
    return Webhook.objects.create(owner=owner, **{**values, **fields})


def test_it_signs_the_raw_body_with_hmac_sha256():
    body = b'{"a":1}'
    expected = hmac.new(b"topsecret", body, hashlib.sha256).hexdigest()
    assert services.signature("topsecret", body) == f"sha256={expected}"
    assert services.signature("other", body) != services.signature("topsecret", body)


def test_backoff_doubles_and_is_capped(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 10
    settings.WEBHOOK_RETRY_MAX_SECONDS = 60
    assert [services.backoff(n) for n in range(1, 6)] == [10, 20, 40, 60, 60]


def test_an_event_is_recorded_once_by_its_key(owner, django_capture_on_commit_callbacks, no_broker):
    hook(owner)
    with django_capture_on_commit_callbacks(execute=True):
        first = services.record(owner, EventKind.IMAGE_PUSHED, key="registry:abc", repository="alice/app",
                                data={"tag": "1"})
        again = services.record(owner, EventKind.IMAGE_PUSHED, key="registry:abc", repository="alice/app",
                                data={"tag": "1"})
    assert first is not None and again is None
    assert Event.objects.filter(key="registry:abc").count() == 1
    assert Delivery.objects.count() == 1
    assert [name for name, _, _ in no_broker] == ["events.deliver"]


def test_only_webhooks_that_want_the_event_get_a_delivery(owner, outsider):
    wanted = hook(owner)
    hook(owner, events=[EventKind.BUILD_FINISHED])
    hook(owner, repository="alice/other")
    hook(owner, active=False)
    hook(outsider)
    event = services.record(owner, EventKind.IMAGE_PUSHED, key="k1", repository="alice/app")
    assert list(Delivery.objects.values_list("webhook", flat=True)) == [wanted.pk]
    assert event.deliveries.count() == 1


def test_an_unknown_kind_is_a_bug():
    with pytest.raises(ValueError):
        services.record(None, "image.exploded", key="x")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/", "http://localhost/", "http://169.254.169.254/latest",
                                 "http://10.1.2.3/", "http://192.168.0.10/", "http://[::1]/", "ftp://example.com/",
                                 "file:///etc/passwd", "http://100.64.0.1/"])
def test_a_user_may_not_aim_a_webhook_at_the_machine_or_private_networks(owner, settings, url):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    with pytest.raises(DomainError) as refused:
        services.create_webhook(owner, url=url, events=[EventKind.IMAGE_PUSHED], secret="long enough")
    assert refused.value.field == "url"
    assert not Webhook.objects.exists()


def test_staff_may_aim_a_webhook_at_loopback(staff, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    webhook = services.create_webhook(staff, url="http://127.0.0.1:9/in", events=[EventKind.IMAGE_PUSHED],
                                      secret="long enough")
    assert webhook.url == "http://127.0.0.1:9/in"


def test_a_public_url_is_fine_for_anyone(owner, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    webhook = services.create_webhook(owner, url="https://93.184.216.34/hook", events=["image.pushed"],
                                      secret="long enough")
    assert Webhook.objects.get().secret == "long enough" and webhook.events == ["image.pushed"]


@pytest.mark.parametrize(("fields", "field"), [({"events": []}, "events"), ({"events": ["nope"]}, "events"),
                                                ({"secret": "short"}, "secret"), ({"repository": "a b"}, "repository")])
def test_it_refuses_bad_fields(owner, fields, field):
    values = {"url": "https://93.184.216.34/", "events": ["image.pushed"], "secret": "long enough", **fields}
    with pytest.raises(DomainError) as refused:
        services.create_webhook(owner, **values)
    assert refused.value.field == field


def test_the_secret_is_stored_encrypted(owner):
    from django.db import connection

    webhook = hook(owner, secret="plain-secret-words")
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM events_webhook WHERE id = %s", [webhook.pk])
        stored = cursor.fetchone()[0]
    assert "plain-secret-words" not in stored and stored


def queued_delivery(owner) -> Delivery:
    hook(owner)
    event = services.record(owner, EventKind.IMAGE_PUSHED, key="k-run", repository="alice/app", data={"tag": "1"})
    return event.deliveries.get()


def answers(monkeypatch, *results: Answer) -> list[dict]:
    """Stand in for the network: each attempt gets the next answer; returns what each attempt was sent."""
    sent, queue = [], list(results)

    def fake_post(url, body, headers, *, user, timeout):
        sent.append({"url": url, "body": body, "headers": headers, "user": user})
        return queue.pop(0)

    monkeypatch.setattr(services, "post", fake_post)
    return sent


def test_a_delivery_is_retried_with_backoff_then_succeeds(owner, monkeypatch, settings, no_broker,
                                                           django_capture_on_commit_callbacks):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 10
    delivery = queued_delivery(owner)
    sent = answers(monkeypatch, Answer(500, "The webhook answered 500.", 3), Answer(None, "No answer.", 5),
                   Answer(204, "", 2))
    no_broker.clear()
    with django_capture_on_commit_callbacks(execute=True):
        first = services.run_delivery(delivery.pk)
    assert first.status == JobStatus.QUEUED and first.attempt_count == 1 and first.next_attempt_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        second = services.run_delivery(delivery.pk)
    assert second.status == JobStatus.QUEUED and second.attempt_count == 2
    third = services.run_delivery(delivery.pk)
    assert third.status == JobStatus.SUCCEEDED and third.response_status == 204
    assert [options.get("countdown") for _, _, options in no_broker] == [10, 20]
    attempts = list(third.attempts.values_list("number", "status_code", "error"))
    assert attempts == [(1, 500, "The webhook answered 500."), (2, None, "No answer."), (3, 204, "")]
    # The same body, signed, with the same delivery id at every attempt; the timestamp is the attempt's.
    body = sent[0]["body"]
    assert all(item["body"] == body for item in sent)
    assert json.loads(body)["type"] == "image.pushed" and json.loads(body)["data"] == {"tag": "1"}
    for item in sent:
        assert item["headers"]["X-Console-Signature"] == services.signature("s3cret-value", body)
        assert item["headers"]["X-Console-Delivery"] == str(delivery.uid)
        assert item["headers"]["X-Console-Timestamp"].isdigit()
        assert item["user"] == owner


def test_a_delivery_gives_up_after_the_last_attempt(owner, monkeypatch, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    delivery = queued_delivery(owner)
    answers(monkeypatch, Answer(500, "The webhook answered 500.", 1), Answer(502, "The webhook answered 502.", 1))
    services.run_delivery(delivery.pk)
    final = services.run_delivery(delivery.pk)
    assert final.status == JobStatus.FAILED and final.attempt_count == 2
    assert "2 attempts" in final.error and "502" in final.error
    # Nothing runs a final delivery again.
    assert services.run_delivery(delivery.pk) is None


def test_redeliver_is_a_new_delivery_of_the_same_event(owner, monkeypatch, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    delivery = queued_delivery(owner)
    with pytest.raises(Conflict):
        services.redeliver(delivery)
    answers(monkeypatch, Answer(500, "The webhook answered 500.", 1), Answer(200, "", 1))
    services.run_delivery(delivery.pk)
    delivery.refresh_from_db()
    again = services.redeliver(delivery)
    assert again.pk != delivery.pk and again.uid != delivery.uid and again.event_id == delivery.event_id
    assert again.redelivery_of == delivery
    assert services.run_delivery(again.pk).status == JobStatus.SUCCEEDED


def test_a_turned_off_webhook_is_not_sent(owner, monkeypatch):
    delivery = queued_delivery(owner)
    Webhook.objects.update(active=False)
    sent = answers(monkeypatch)
    assert services.run_delivery(delivery.pk).status == JobStatus.FAILED
    assert sent == []
