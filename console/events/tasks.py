from __future__ import annotations

from celery import shared_task

from console.events import services


@shared_task(name="events.deliver", bind=True, acks_late=True)
def deliver(self, delivery_id: int) -> None:
    """One attempt of a webhook delivery; the next one, if any, is queued by the service with its backoff."""
    services.run_delivery(delivery_id)


@shared_task(name="events.send_due_deliveries", acks_late=True)
def send_due_deliveries() -> None:
    services.send_due_deliveries()
