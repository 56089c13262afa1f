"""A deployment whose worker died does not stay `running`: the run sends heartbeats while its targets work, and
the periodic host check (fleet.check_hosts) fails deployments whose heartbeat stopped."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from console import jobs
from console.constants import JobStatus
from fleet import services, tasks
from fleet.models import Deployment, DeploymentTarget, Host
from fleet.services import deployer

pytestmark = pytest.mark.django_db(transaction=True)


def make(owner, host, status: str, heartbeat_age: timedelta | None, target_status: str = JobStatus.RUNNING):
    now = timezone.now()
    deployment = Deployment.objects.create(
        owner=owner, name=f"app-{status}", image="hello:1", image_id="sha256:" + "a" * 64, status=status,
        started_at=now, heartbeat_at=now - heartbeat_age if heartbeat_age is not None else None,
    )
    DeploymentTarget.objects.create(deployment=deployment, host=host, host_name=host.name, status=target_status,
                                    step="pulling")
    return deployment


@pytest.fixture
def host(owner):
    return Host.objects.create(owner=owner, name="h1", url="tcp://10.9.9.9:2375")


def test_it_fails_a_running_deployment_without_heartbeat_and_its_unfinished_targets(owner, host):
    lost = make(owner, host, JobStatus.RUNNING, timedelta(minutes=10))
    DeploymentTarget.objects.create(deployment=lost, host=host, host_name="done", status=JobStatus.SUCCEEDED)

    assert services.reap_lost_deployments() == [lost.pk]

    lost.refresh_from_db()
    assert (lost.status, lost.error) == ("failed", "The worker running this deployment was lost (no heartbeat).")
    assert lost.finished_at is not None
    targets = {target.host_name: target for target in lost.targets.all()}
    assert (targets["h1"].status, targets["h1"].error, targets["h1"].step) == (
        "failed", "the worker was lost before this host finished", "")
    assert targets["done"].status == "succeeded"
    assert jobs.log_text(lost).endswith("The worker running this deployment was lost (no heartbeat).")
    assert services.reap_lost_deployments() == []


def test_it_leaves_live_queued_and_finished_deployments_alone(owner, host):
    live = make(owner, host, JobStatus.RUNNING, timedelta(seconds=5))
    queued = make(owner, host, JobStatus.QUEUED, None, target_status=JobStatus.QUEUED)
    done = make(owner, host, JobStatus.SUCCEEDED, timedelta(hours=1), target_status=JobStatus.SUCCEEDED)

    assert services.reap_lost_deployments() == []
    assert [Deployment.objects.get(pk=d.pk).status for d in (live, queued, done)] == ["running", "queued",
                                                                                     "succeeded"]


def test_the_periodic_host_check_reaps(owner, host, monkeypatch):
    lost = make(owner, host, JobStatus.RUNNING, timedelta(minutes=10))
    monkeypatch.setattr(services, "check_all_hosts", lambda: {})

    tasks.check_hosts.apply()

    assert Deployment.objects.get(pk=lost.pk).status == "failed"


def test_a_running_deployment_sends_heartbeats_while_its_targets_work(owner, host, monkeypatch):
    """A target that takes long (a slow pull) keeps the deployment alive; it is not mistaken for a lost one."""
    deployment = make(owner, host, JobStatus.QUEUED, None, target_status=JobStatus.QUEUED)
    release, beats = threading.Event(), []
    monkeypatch.setattr(deployer, "DEPLOY_HEARTBEAT_SECONDS", 0.05)
    heartbeat = jobs.heartbeat
    monkeypatch.setattr(jobs, "heartbeat", lambda job: beats.append(timezone.now()) or heartbeat(job))

    def slow_target(deployment, target):
        release.wait(10)
        services._update_target(target, status=JobStatus.SUCCEEDED)

    monkeypatch.setattr(deployer, "run_target", slow_target)
    def run() -> None:
        try:
            services.run_deployment(deployment.pk)
        finally:
            connections.close_all()

    runner = threading.Thread(target=run)
    runner.start()
    try:
        deadline = timezone.now() + timedelta(seconds=10)
        while len(beats) < 3 and timezone.now() < deadline:
            threading.Event().wait(0.05)
        assert len(beats) >= 3
        assert services.reap_lost_deployments(older_than=timedelta(seconds=2)) == []
        assert Deployment.objects.get(pk=deployment.pk).heartbeat_at >= beats[0]
    finally:
        release.set()
        runner.join(timeout=10)
    assert Deployment.objects.get(pk=deployment.pk).status == "succeeded"
