"""The webhooks and events pages: list, add, deliveries, redeliver, delete; the owner's only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console.events import services
from console.events.constants import EventKind
from console.events.models import Delivery, Webhook

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr("console.jobs.enqueue.send", lambda name, *args, **options: "t")


def test_it_adds_a_webhook_and_shows_its_deliveries(owner, owner_client):
    page = owner_client.get(reverse("events:webhook-list"))
    assert page.status_code == 200 and b"Add a webhook" in page.content
    added = owner_client.post(reverse("events:webhook-list"), {"url": "https://93.184.216.34/in",
                                                               "events": ["image.pushed"], "secret": "long enough"})
    webhook = Webhook.objects.get()
    assert added.status_code == 302 and added["Location"] == reverse("events:webhook-detail", args=[webhook.pk])
    services.record(owner, EventKind.IMAGE_PUSHED, key="k", repository="alice/app")
    Delivery.objects.update(status="failed", error="The webhook answered 500.")
    detail = owner_client.get(reverse("events:webhook-detail", args=[webhook.pk]))
    assert b"The webhook answered 500." in detail.content and b"long enough" not in detail.content
    delivery = Delivery.objects.get()
    owner_client.post(reverse("events:delivery-redeliver", args=[webhook.pk, delivery.pk]))
    assert Delivery.objects.filter(redelivery_of=delivery).count() == 1
    owner_client.post(reverse("events:webhook-delete", args=[webhook.pk]))
    assert not Webhook.objects.exists()


def test_a_refused_url_is_shown_on_the_form(owner_client, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    page = owner_client.post(reverse("events:webhook-list"), {"url": "http://127.0.0.1:8000/",
                                                              "events": ["image.pushed"], "secret": "long enough"})
    assert page.status_code == 400 and b"loopback" in page.content
    assert not Webhook.objects.exists()


def test_an_outsider_gets_404(owner, client, outsider):
    webhook = Webhook.objects.create(owner=owner, url="https://93.184.216.34/", events=["image.pushed"],
                                     secret="long enough")
    client.force_login(outsider)
    assert client.get(reverse("events:webhook-detail", args=[webhook.pk])).status_code == 404
    assert client.post(reverse("events:webhook-delete", args=[webhook.pk])).status_code == 404
    assert Webhook.objects.exists()


def test_the_events_page_lists_the_owners_events(owner, owner_client, outsider):
    services.record(owner, EventKind.IMAGE_PUSHED, key="a", repository="alice/app", data={"tag": "7"})
    services.record(outsider, EventKind.IMAGE_PUSHED, key="b", repository="mallory/secret")
    page = owner_client.get(reverse("events:event-list"))
    assert b"alice/app" in page.content and b"mallory/secret" not in page.content
    assert owner_client.post(reverse("events:event-list")).status_code == 405
