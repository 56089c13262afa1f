"""Thin Celery tasks of the fleet: ids in, one service call."""

from __future__ import annotations

from celery import shared_task

from fleet import services
from fleet.models import Host
from fleet.services import follow


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


@shared_task(bind=True, acks_late=True, name="fleet.follow_tag", max_retries=120)
def follow_tag(self, event_id: int) -> None:
    """A push that moved a followed tag: its new releases (or pending ones); an app being deployed is followed
    once that deployment ends."""
    try:
        follow.follow_pushed_tag(event_id)
    except follow.AppBusy as exc:
        raise self.retry(countdown=5) from exc
