"""Thin Celery tasks of the fleet: ids in, one service call."""

from __future__ import annotations

from celery import shared_task

from fleet import services
from fleet.models import Host


@shared_task(bind=True, acks_late=True, name="fleet.run_deployment")
def run_deployment(self, deployment_id: int) -> None:
    services.run_deployment(deployment_id)


@shared_task(bind=True, acks_late=True, name="fleet.check_host")
def check_host(self, host_id: int) -> None:
    host = Host.objects.filter(pk=host_id).first()
    if host is not None:
        services.check_host(host)


@shared_task(bind=True, acks_late=True, name="fleet.check_hosts", ignore_result=True)
def check_hosts(self) -> dict[str, int]:
    """The periodic check (see console/celery.py): every host's status, fresh; and deployments whose worker was
    lost are failed on the way (the fleet's reaper, as builds.reap_lost_builds is the builds')."""
    services.reap_lost_deployments()
    return services.check_all_hosts()
