from __future__ import annotations

from celery import shared_task

from registry import services


@shared_task(bind=True, acks_late=True, name="registry.run_push")
def run_push_task(self, push_id: int) -> None:
    services.run_push(push_id)


@shared_task(bind=True, acks_late=True, name="registry.run_pull")
def run_pull_task(self, pull_id: int) -> None:
    services.run_pull(pull_id)


@shared_task(name="registry.reap_lost_transfers", acks_late=True)
def reap_lost_transfers() -> list[str]:
    """Fail pushes and pulls whose worker died (periodic, see console/celery.py)."""
    return services.reap_lost_transfers()
