"""The deployment run, on a worker: DeploymentRunner, each target (bringing the image to the host, replacing
the app's container so that the previous one serves until the new one does), and the reaper that fails a
deployment whose worker was lost and undoes what it left half done.

A deployment runs all its targets at once in a thread pool inside its one Celery task: the work is waiting on
engines (network and disk on the hosts), so threads suffice, and one task keeps one job row, one claim, one log
and one place that decides the deployment's final status once every target has ended (a Celery group would
need a chord, hence a result backend, which the console does not run, and as many free workers as hosts)."""

from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, connections
from django.utils import timezone

from builds import access
from console import jobs, references
from console.constants import ACTIVE_STATUSES, JobStatus
from console.engine import Engine, EngineError
from console.engine import containers as engine_containers
from console.engine.transfer import copy_image
from fleet.constants import (
    CHECK_TIMEOUT_SECONDS,
    DEPLOY_HEARTBEAT_SECONDS,
    DEPLOY_HEARTBEAT_TIMEOUT,
    HEALTH_TIMEOUT_SECONDS,
    LABEL_DEPLOYMENT,
    LABEL_DIGEST,
    LABEL_MANAGED,
    LABEL_NAME,
    LABEL_OWNER,
    MAX_PARALLEL_TARGETS,
    START_GRACE_SECONDS,
)
from fleet.models import Deployment, DeploymentTarget

log = logging.getLogger(__name__)

# What registries answer to missing or wrong credentials, as the engine passes it on.
REFUSED_RE = re.compile(r"unauthorized|authentication required|denied", re.IGNORECASE)


# How long a target's log line may wait to be written with the lines that follow it (from any host's thread).
LOG_FLUSH_SECONDS = 0.5


class TargetFailed(Exception):
    """A target could not be deployed; the message says why, for the user."""


class DeploymentLog:
    """The log lines of a deployment's target threads, written together: one transaction at most every
    LOG_FLUSH_SECONDS (and when a line must be on record before the next step) instead of one per line from
    each host's thread. One writer at a time per deployment, so its threads never race each other for the
    database's write lock (SQLite's is one for the whole file), and each host's lines keep their order.

    A periodic flush that fails (the database stayed locked past its busy timeout) keeps the lines for the next
    one instead of failing the target; `flush()` at the end, and a durable `add`, raise."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.pending: list[str] = []
        self.pending_lock = threading.Lock()
        self.writing = threading.Lock()
        self.last_flush = time.monotonic()

    def add(self, line: str, *, durable: bool = False) -> None:
        with self.pending_lock:
            self.pending.append(line)
        if durable:
            self.flush()
        elif time.monotonic() - self.last_flush >= LOG_FLUSH_SECONDS:
            self.flush(strict=False)

    def flush(self, strict: bool = True) -> None:
        with self.writing:
            with self.pending_lock:
                lines, self.pending = self.pending, []
            if not lines:
                return
            try:
                jobs.append_log(self.deployment, lines)
            except DatabaseError:
                with self.pending_lock:
                    self.pending[:0] = lines
                if strict:
                    raise
                log.warning("Deployment #%s: %d log line(s) wait for the next flush", self.deployment.pk,
                            len(lines), exc_info=True)
                return
            self.last_flush = time.monotonic()


# The log of each deployment this process is running, by id: where its target threads' lines go.
_running_logs: dict[int, DeploymentLog] = {}


class DeploymentRunner(jobs.JobRunner):
    """A deployment as a job: every target at once, each in its own thread; the deployment fails when one does."""

    model = Deployment

    def work(self, deployment: Deployment) -> tuple[str, str]:
        targets = list(deployment.targets.values_list("pk", flat=True))
        jobs.append_log(deployment, [f"Deploying {deployment.image} as {deployment.name} to {len(targets)} host(s)"])
        target_log = _running_logs[deployment.pk] = DeploymentLog(deployment)
        try:
            self._run_targets(deployment, targets, target_log)
        finally:
            del _running_logs[deployment.pk]
        finished = list(deployment.targets.all())
        failed = [target for target in finished if target.status != JobStatus.SUCCEEDED]
        if failed:
            summary = "; ".join(f"{target.host_name}: {target.error}" for target in failed)
            return JobStatus.FAILED, f"{len(failed)} of {len(finished)} host(s) failed: {summary}"
        return JobStatus.SUCCEEDED, ""

    def _run_targets(self, deployment: Deployment, targets: list[int], target_log: DeploymentLog) -> None:
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_TARGETS, max(1, len(targets)))) as pool:
            futures = [pool.submit(_run_target_in_thread, deployment.pk, pk) for pk in targets]
            # A heartbeat while targets run (a pull can be silent for minutes): the reaper tells a slow deployment
            # from one whose worker died. The lines of a host that went quiet are written meanwhile.
            last_beat = time.monotonic()
            while wait(futures, timeout=min(LOG_FLUSH_SECONDS, DEPLOY_HEARTBEAT_SECONDS)).not_done:
                target_log.flush(strict=False)
                if time.monotonic() - last_beat >= DEPLOY_HEARTBEAT_SECONDS:
                    jobs.heartbeat(deployment)
                    last_beat = time.monotonic()
            target_log.flush()
            for future in futures:
                future.result()

    def unexpected(self, deployment: Deployment, exc: Exception) -> str:
        return f"The deployment stopped unexpectedly: {exc}"

    def conclude(self, deployment: Deployment, status: str, error: str) -> None:
        if status == JobStatus.SUCCEEDED:
            jobs.append_log(deployment, [f"Deployed to all {deployment.targets.count()} host(s)"])
        elif error:
            jobs.append_log(deployment, [error])


def run_deployment(deployment_id: int) -> None:
    """The task's body: claim the deployment, run every target at once, then decide the final status."""
    DeploymentRunner().run(deployment_id)


LOST_WORKER = "The worker running this deployment was lost (no heartbeat)."
# Logged before the previous containers stop for the ports; the reaper reads it to start them again.
STOPPING_FOR_PORTS = "stopping {names} to free the ports"


def reap_lost_deployments(older_than: timedelta | None = None) -> list[int]:
    """Fail running deployments whose worker stopped sending heartbeats, and their unfinished targets, so that
    none stays `running` (and blocks the next deployment of its name) forever."""
    if older_than is None:
        older_than = timedelta(seconds=DEPLOY_HEARTBEAT_TIMEOUT)
    reaped = [deployment.pk for deployment in jobs.reap_lost(Deployment, older_than, LOST_WORKER,
                                                             clean_up=_fail_lost_targets)]
    if reaped:
        log.warning("Deployments whose worker was lost: %s", reaped)
    return reaped


def _fail_lost_targets(deployment: Deployment) -> None:
    """A lost deployment's unfinished targets fail; what a running one left half done on its host is undone."""
    unfinished = list(deployment.targets.filter(status__in=ACTIVE_STATUSES).select_related("host"))
    DeploymentTarget.objects.filter(pk__in=[target.pk for target in unfinished]).update(
        status=JobStatus.FAILED, error="the worker was lost before this host finished", step="",
        finished_at=timezone.now(),
    )
    for target in unfinished:
        if target.status == JobStatus.RUNNING and target.host is not None:
            _undo_lost_target(deployment, target)


def _undo_lost_target(deployment: Deployment, target: DeploymentTarget) -> None:
    """Undo on its host what a lost worker left half done, as a failing target does itself: without this, the new
    container of a failed deployment keeps running (holding the ports) while the release it was replacing stays
    stopped. Which previous containers the run stopped for the ports is read from the deployment's log, not guessed
    from the engine's clock: a container the user had stopped stays stopped."""

    def say(line: str) -> None:
        jobs.append_log(deployment, [f"[{target.host_name}] {line}"])

    prefix, suffix = STOPPING_FOR_PORTS.split("{names}")
    marker = f"[{target.host_name}] {prefix}"
    stopped = {
        name for line in jobs.log_text(deployment).splitlines() if line.startswith(marker) and line.endswith(suffix)
        for name in line[len(marker):-len(suffix)].split(", ")
    }
    try:
        # The reaper runs in the periodic host check: a silent host must not hold it up.
        with target.host.engine(timeout=CHECK_TIMEOUT_SECONDS) as engine:
            for container in app_containers(engine, deployment):
                if container["labels"].get(LABEL_DEPLOYMENT) == str(deployment.pk):
                    say(f"removing {container['name']}, left half-made by the lost worker")
                    engine_containers.act_on_container(engine, container["id"], "remove")
                elif container["name"] in stopped and container["state"] not in ("running", "restarting"):
                    engine_containers.act_on_container(engine, container["id"], "start")
                    say(f"{container['name']} serves again")
    except EngineError as exc:
        say(f"could not undo what the lost worker left on this host: {exc}")


def _run_target_in_thread(deployment_id: int, target_id: int) -> None:
    try:
        deployment = Deployment.objects.get(pk=deployment_id)
        target = DeploymentTarget.objects.select_related("host").get(pk=target_id)
        run_target(deployment, target)
    finally:
        # Each thread has its own database connection: close it, or the pool leaks one per target.
        connections.close_all()


def _update_target(target: DeploymentTarget, **fields: Any) -> None:
    for field, value in fields.items():
        setattr(target, field, value)
    DeploymentTarget.objects.filter(pk=target.pk).update(**fields)


def run_target(deployment: Deployment, target: DeploymentTarget) -> None:
    """Deploy to one host; a failure ends this target only, with the reason in its `error`. Its log lines go to
    the log its deployment's runner shares among the targets and flushes; alone, to one flushed at the end."""
    target_log = _running_logs.get(deployment.pk)
    own_log = target_log is None
    if target_log is None:
        target_log = DeploymentLog(deployment)

    def say(line: str, durable: bool = False) -> None:
        target_log.add(f"[{target.host_name}] {line}", durable=durable)

    try:
        _run_target(deployment, target, say)
    finally:
        if own_log:
            target_log.flush()


def _run_target(deployment: Deployment, target: DeploymentTarget, say) -> None:
    _update_target(target, status=JobStatus.RUNNING, started_at=timezone.now(), step="connecting")
    try:
        if target.host is None:
            raise TargetFailed("the host was removed from the console")
        with target.host.engine() as engine:
            reference, digest = _ensure_image(deployment, target, engine, say)
            container_id = _replace_container(deployment, target, engine, reference, digest, say)
    except (EngineError, TargetFailed) as exc:
        message = str(exc)
        say(f"failed: {message}")
        _update_target(target, status=JobStatus.FAILED, error=message, step="", finished_at=timezone.now())
        return
    url = ""
    if deployment.ports:
        url = f"http://{target.host.address}:{next(iter(deployment.ports.values()))}/"
    say(f"running as container {container_id[:12]}" + (f", at {url}" if url else ""))
    _update_target(target, status=JobStatus.SUCCEEDED, container_id=container_id, url=url, step="",
                   finished_at=timezone.now())


def _auth_config(account, reference: str) -> dict[str, str]:
    """The engine's auth config for pulling `reference` with a stored account (a scoped token for the console's
    own registry, the account's username and password elsewhere)."""
    from registry.services import auth_config_for

    repository, _ = engine_containers.split_reference(reference)
    index = account.endpoint.index
    name = repository[len(index) + 1:] if repository.startswith(index + "/") else repository
    return auth_config_for(account, name, {"pull"})


def _ensure_image(deployment: Deployment, target: DeploymentTarget, engine: Engine, say) -> tuple[str, str]:
    """Bring the image to the host: a pull with stored credentials, or a save->load stream from the build engine.
    Returns (the reference to create the container from, the digest to label it with)."""
    if deployment.registry_account_id:
        from registry.models import RegistryAccount

        account = RegistryAccount.objects.filter(pk=deployment.registry_account_id, owner=deployment.owner).first()
        if account is None:
            raise TargetFailed("the registry account of this deployment was removed")
        _update_target(target, step="pulling")
        say(f"pulling {deployment.image} with the credentials of registry account {account.name}")
        try:
            image_id = engine_containers.pull_image(engine, deployment.image, _auth_config(account, deployment.image))
        except EngineError as exc:
            # The engine only says "unauthorized"; name the account whose credentials to fix.
            if REFUSED_RE.search(str(exc)):
                raise TargetFailed(f"the registry refused the credentials of registry account {account.name}: "
                                   f"{exc}") from exc
            raise
        _, digests, _ = engine_containers.image_identity(engine, image_id)
        repository, _ = engine_containers.split_reference(deployment.image)
        digest = next((d for d in digests if references.split(d)[0] == repository), digests[0] if digests else "")
        # The first host to pull records what the reference meant: rollbacks pull exactly that digest.
        Deployment.objects.filter(pk=deployment.pk, image_id="").update(image_id=image_id, image_digest=digest)
        return deployment.image, digest or image_id
    image_id = deployment.image_id
    if engine.image_exists(image_id):
        say(f"already has image {image_id[:19]}")
    else:
        _update_target(target, step="copying the image")
        say(f"copying image {deployment.image} from the build engine")
        # On a build farm the image lives on the node that built it.
        with access.engine_holding(deployment.owner, image_id) as source:
            moved = copy_image(source, engine, image_id)
        say(f"copied {moved / 1024 / 1024:.1f} MiB")
    if not deployment.image.startswith("sha256:") and "@" not in deployment.image:
        # Name it on the host too, in the owner's own namespace, so `docker images` there says whose it is; the
        # container is made from the id, which no other user's deployment to this host can retag.
        repository, tag = access.split_reference(access.engine_name(deployment.owner, deployment.image))
        engine.tag_image(image_id, repository, tag)
    return image_id, image_id


def app_containers(engine: Engine, deployment: Deployment) -> list[dict[str, Any]]:
    """The containers of the deployment's app on a host: its name AND its owner's, so that a deployment named like
    another user's app on a shared host never touches that user's containers. A container from before the owner
    label counts when its deployment id is one of the owner's deployments."""
    named = engine_containers.list_containers(engine, labels={LABEL_MANAGED: "true", LABEL_NAME: deployment.name})
    legacy = {int(c["labels"].get(LABEL_DEPLOYMENT, "")) for c in named
              if LABEL_OWNER not in c["labels"] and c["labels"].get(LABEL_DEPLOYMENT, "").isdigit()}
    if legacy:
        legacy = set(
            Deployment.objects.filter(owner_id=deployment.owner_id, pk__in=legacy).values_list("pk", flat=True)
        )
    owner = str(deployment.owner_id)
    return [
        container for container in named
        if container["labels"].get(LABEL_OWNER) == owner
        or (LABEL_OWNER not in container["labels"] and container["labels"].get(LABEL_DEPLOYMENT, "").isdigit()
            and int(container["labels"][LABEL_DEPLOYMENT]) in legacy)
    ]


def _replace_container(
    deployment: Deployment, target: DeploymentTarget, engine: Engine, reference: str, digest: str, say
) -> str:
    """Run the new container and retire the old one only once the new one serves; on failure, the old one serves
    again. The ports are the catch: the new container cannot bind them while the old one holds them, so the old
    one stops just before the new one starts, and starts again if the new one fails."""
    container_name = f"{deployment.name}-{deployment.pk}"
    old = app_containers(engine, deployment)
    for container in old:
        if container["name"] == container_name:
            # Left by an earlier attempt of this same deployment (a worker that died): start afresh.
            engine_containers.act_on_container(engine, container["id"], "remove")
    old = [container for container in old if container["name"] != container_name]
    serving = [container for container in old if container["state"] in ("running", "restarting")]
    _, _, has_health = engine_containers.image_identity(engine, reference)
    spec = engine_containers.ContainerSpec(
        image=reference, name=container_name, ports=deployment.ports, env=deployment.env,
        labels={LABEL_MANAGED: "true", LABEL_NAME: deployment.name, LABEL_OWNER: str(deployment.owner_id),
                LABEL_DEPLOYMENT: str(deployment.pk), LABEL_DIGEST: digest},
        restart_policy=deployment.restart_policy, memory_limit=deployment.memory_limit, cpus=deployment.cpus,
        user=deployment.user,
    )
    _update_target(target, step="creating the container")
    new_id = engine_containers.create_container(engine, spec)
    _update_target(target, container_id=new_id)
    say(f"created container {container_name} ({new_id[:12]})")
    reason = ""
    try:
        if deployment.ports and serving:
            names = ", ".join(container["name"] for container in serving)
            # On record before they stop: the reaper of a lost worker starts again the ones this line names.
            say(STOPPING_FOR_PORTS.format(names=names), durable=True)
            for container in serving:
                engine_containers.act_on_container(engine, container["id"], "stop")
        _update_target(target, step="starting")
        engine_containers.act_on_container(engine, new_id, "start")
        _update_target(target, step="waiting until healthy" if has_health else "waiting until it stays up")
        reason = engine_containers.wait_until_serving(
            engine, new_id, grace=START_GRACE_SECONDS, health_timeout=HEALTH_TIMEOUT_SECONDS, has_health=has_health
        )
    except EngineError as exc:
        reason = str(exc)
    if reason:
        _update_target(target, step="restoring the previous container", container_id="")
        say(f"the new container does not serve ({reason}); removing it")
        try:
            engine_containers.act_on_container(engine, new_id, "remove")
        except EngineError as exc:
            say(f"could not remove the new container: {exc}")
        restored = []
        for container in serving:
            try:
                engine_containers.act_on_container(engine, container["id"], "start")
                restored.append(container["name"])
            except EngineError as exc:
                say(f"could not restart {container['name']}: {exc}")
        if restored:
            say(f"{', '.join(restored)} serves again")
            raise TargetFailed(f"{reason}; the previous container ({', '.join(restored)}) keeps serving")
        raise TargetFailed(reason)
    for container in old:
        say(f"removing the previous container {container['name']}")
        engine_containers.act_on_container(engine, container["id"], "remove")
    return new_id
