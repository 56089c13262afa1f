"""A deployment's target threads write their log lines together (fleet.services.deployer.DeploymentLog): fewer
transactions than lines, each host's lines in order, a line the reaper relies on written at once, and a write that
fails (the database locked past its busy timeout) retried instead of failing the target."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connections

from console import jobs
from fleet.models import Deployment
from fleet.services import deployer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def deployment(owner):
    return Deployment.objects.create(owner=owner, name="app", image="hello:1", image_id="sha256:" + "a" * 64)


@pytest.fixture
def appends(monkeypatch):
    """Every call of jobs.append_log, by the lines it wrote."""
    calls: list[list[str]] = []
    append_log = jobs.append_log

    def counting(job, lines):
        append_log(job, lines)
        calls.append(list(lines))

    monkeypatch.setattr(jobs, "append_log", counting)
    return calls


def test_threads_lines_are_written_together_and_in_each_hosts_order(deployment, appends, monkeypatch):
    monkeypatch.setattr(deployer, "LOG_FLUSH_SECONDS", 0.05)
    target_log = deployer.DeploymentLog(deployment)
    barrier = threading.Barrier(3)

    def host(name: str) -> None:
        try:
            barrier.wait()
            for n in range(50):
                target_log.add(f"[{name}] line {n}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=host, args=(f"h{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    target_log.flush()

    lines = jobs.log_text(deployment).split("\n")
    assert len(lines) == 150
    for name in ("h0", "h1", "h2"):
        assert [line for line in lines if line.startswith(f"[{name}]")] == [f"[{name}] line {n}" for n in range(50)]
    assert len(appends) < 150
    assert sum(len(call) for call in appends) == 150


def test_a_line_waits_for_the_next_flush_unless_it_is_durable(deployment, appends):
    target_log = deployer.DeploymentLog(deployment)
    target_log.add("[h1] copying image")
    assert jobs.log_text(deployment) == ""

    target_log.add("[h1] stopping app-1 to free the ports", durable=True)

    assert jobs.log_text(deployment).split("\n") == ["[h1] copying image", "[h1] stopping app-1 to free the ports"]
    assert appends == [["[h1] copying image", "[h1] stopping app-1 to free the ports"]]


def test_a_periodic_flush_that_fails_keeps_its_lines_for_the_next(deployment, monkeypatch):
    target_log = deployer.DeploymentLog(deployment)
    append_log, failures = jobs.append_log, []

    def locked_once(job, lines):
        if not failures:
            failures.append(lines)
            raise OperationalError("database is locked")
        append_log(job, lines)

    monkeypatch.setattr(jobs, "append_log", locked_once)
    target_log.add("[h1] one")
    target_log.flush(strict=False)
    target_log.add("[h1] two")
    target_log.flush()

    assert failures == [["[h1] one"]]
    assert jobs.log_text(deployment).split("\n") == ["[h1] one", "[h1] two"]


def test_the_last_flush_raises_what_it_could_not_write(deployment, monkeypatch):
    target_log = deployer.DeploymentLog(deployment)
    monkeypatch.setattr(jobs, "append_log", lambda job, lines: (_ for _ in ()).throw(OperationalError("locked")))
    target_log.add("[h1] one")
    with pytest.raises(OperationalError):
        target_log.flush()
    assert target_log.pending == ["[h1] one"]


def test_a_deployment_run_writes_its_targets_lines_before_it_ends(owner, monkeypatch):
    """run_deployment with targets that only log: every line is on record when it ends, in fewer writes."""
    from fleet import services
    from fleet.models import DeploymentTarget, Host

    deployment = Deployment.objects.create(owner=owner, name="app", image="hello:1", image_id="sha256:" + "a" * 64)
    for n in range(3):
        host = Host.objects.create(owner=owner, name=f"h{n}", url=f"tcp://10.9.9.{n + 1}:2375")
        DeploymentTarget.objects.create(deployment=deployment, host=host, host_name=host.name)

    def chatty_target(deployment, target):
        # What run_target's `say` does, without an engine.
        target_log = deployer._running_logs[deployment.pk]
        for n in range(20):
            target_log.add(f"[{target.host_name}] step {n}")
        services._update_target(target, status="succeeded")

    monkeypatch.setattr(deployer, "run_target", chatty_target)
    services.run_deployment(deployment.pk)

    deployment.refresh_from_db()
    assert deployment.status == "succeeded"
    lines = jobs.log_text(deployment).split("\n")
    assert lines[0].startswith("Deploying hello:1 as app to 3 host(s)")
    assert lines[-1] == "Deployed to all 3 host(s)"
    assert len(lines) == 62
    assert deployer._running_logs == {}
