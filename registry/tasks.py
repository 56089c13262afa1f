from __future__ import annotations

from celery import shared_task

from registry import services
from registry.services import gc, retention


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


@shared_task(bind=True, acks_late=True, name="registry.run_retention")
def run_retention_task(self, run_id: int) -> None:
    retention.run_retention(run_id)


@shared_task(name="registry.apply_retention", acks_late=True)
def apply_retention() -> list[int]:
    """Every repository's retention rule, applied daily (console/celery.py): a run per rule."""
    return retention.schedule_all()


@shared_task(name="registry.reap_lost_retention_runs", acks_late=True)
def reap_lost_retention_runs() -> list[int]:
    return retention.reap_lost_runs()


@shared_task(bind=True, acks_late=True, name="registry.run_garbage_collection")
def run_garbage_collection_task(self, job_id: int) -> None:
    gc.run_gc(job_id)


@shared_task(name="registry.reap_lost_garbage_collections", acks_late=True)
def reap_lost_garbage_collections() -> list[int]:
    return gc.reap_lost_collections()
