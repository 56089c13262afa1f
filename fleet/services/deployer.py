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
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, connections
from django.utils import timezone

from builds import access
from console import jobs, netpolicy, references
from console.constants import ACTIVE_STATUSES, FINAL_STATUSES, JobStatus
from console.engine import Engine, EngineError, EngineNotFound
from console.engine import containers as engine_containers
from console.engine.transfer import copy_image
from fleet.constants import (
    CHECK_TIMEOUT_SECONDS,
    DEPLOY_HEARTBEAT_SECONDS,
    DEPLOY_HEARTBEAT_TIMEOUT,
    HEALTH_TIMEOUT_SECONDS,
    LABEL_CONSOLE,
    LABEL_DEPLOYMENT,
    LABEL_DIGEST,
    LABEL_MANAGED,
    LABEL_NAME,
    LABEL_OWNER,
    LABEL_TARGET,
    MAX_PARALLEL_TARGETS,
    PORT_GRACE_SECONDS,
    START_GRACE_SECONDS,
)
from fleet.instance import console_mark, made_by_this_console
from fleet.models import Deployment, DeploymentTarget
from fleet.services.targets import REFUSED_RE, TargetFailed, _auth_config, _update_target, pull_account

log = logging.getLogger(__name__)

# How long a target's log line may wait to be written with the lines that follow it (from any host's thread).
LOG_FLUSH_SECONDS = 0.5


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
        # Final means final: a deployment ends only with each of its targets ended. A target still active here was
        # cut short (the run stopped unexpectedly): it fails, and what it left half done on its host is undone.
        _end_unfinished_targets(deployment, "the deployment stopped before this host finished")
        if status == JobStatus.SUCCEEDED:
            jobs.append_log(deployment, [f"Deployed to all {deployment.targets.count()} host(s)"])
        elif error:
            jobs.append_log(deployment, [error])


def run_deployment(deployment_id: int) -> None:
    """The task's body: claim the deployment, run every target at once, then decide the final status."""
    DeploymentRunner().run(deployment_id)


LOST_WORKER = "The worker running this deployment was lost (no heartbeat)."
# Logged before the previous containers stop for the ports, each as `name (short id)`; the reaper reads it to
# start again those very containers.
STOPPING_FOR_PORTS = "stopping {names} to free the ports"
STOPPED_ENTRY_RE = re.compile(r"^(?P<name>\S+)(?: \((?P<id>[0-9a-f]{12})\))?$")


def reap_lost_deployments(older_than: timedelta | None = None) -> list[int]:
    """Fail running deployments whose worker stopped sending heartbeats, and their unfinished targets, so that
    none stays `running` (and blocks the next deployment of its name) forever."""
    if older_than is None:
        older_than = timedelta(seconds=DEPLOY_HEARTBEAT_TIMEOUT)
    reaped = [deployment.pk for deployment in jobs.reap_lost(Deployment, older_than, LOST_WORKER,
                                                             clean_up=_fail_lost_targets)]
    if reaped:
        log.warning("Deployments whose worker was lost: %s", reaped)
    # Deployments that ended while a target still said it was running (written by an earlier version, or a run
    # whose last steps failed): that target fails too, and what it left on its host is undone.
    stale = Deployment.objects.filter(status__in=FINAL_STATUSES, targets__status__in=ACTIVE_STATUSES).distinct()
    for deployment in stale:
        _end_unfinished_targets(deployment, "the deployment ended before this host finished")
    return reaped


def _fail_lost_targets(deployment: Deployment) -> None:
    """A lost deployment's unfinished targets fail; what a running one left half done on its host is undone."""
    _end_unfinished_targets(deployment, "the worker was lost before this host finished")


def _end_unfinished_targets(deployment: Deployment, reason: str) -> None:
    """Fail the deployment's targets that have not ended, and undo on each host what a running one left half done.
    Each target is claimed by the update that fails it, so two clean-ups at once undo a host once."""
    for target in deployment.targets.filter(status__in=ACTIVE_STATUSES).select_related("host"):
        ended = DeploymentTarget.objects.filter(pk=target.pk, status=target.status).update(
            status=JobStatus.FAILED, error=reason, step="", finished_at=timezone.now())
        # On a swarm the console made no container: Swarm carries the service's rollout on (or back) by itself.
        if ended and target.status == JobStatus.RUNNING and target.host is not None and deployment.swarm is None:
            _undo_lost_target(deployment, target)


def made_by_target(container: dict[str, Any], deployment: Deployment, target: DeploymentTarget) -> bool:
    """Whether this very target (this deployment, this host) created the container: its deployment and target
    labels say so (a container from before the target label: its deployment label and the id the target recorded).
    A clean-up removes nothing else, whatever its name: never another release's container."""
    labels = container["labels"]
    if labels.get(LABEL_DEPLOYMENT) != str(deployment.pk):
        return False
    if LABEL_TARGET in labels:
        return labels[LABEL_TARGET] == str(target.pk)
    return bool(target.container_id) and container["id"].startswith(target.container_id)


def _stopped_for_ports(deployment: Deployment, target: DeploymentTarget) -> tuple[set[str], set[str]]:
    """The previous containers the target's run stopped to free the ports, from the deployment's log (not guessed
    from the engine's clock, so a container the user had stopped stays stopped): (short ids, names of entries
    written without an id by an earlier version)."""
    prefix, suffix = STOPPING_FOR_PORTS.split("{names}")
    marker = f"[{target.host_name}] {prefix}"
    ids: set[str] = set()
    names: set[str] = set()
    for line in jobs.log_text(deployment).splitlines():
        if line.startswith(marker) and line.endswith(suffix):
            for entry in line[len(marker):-len(suffix)].split(", "):
                match = STOPPED_ENTRY_RE.match(entry)
                if match and match["id"]:
                    ids.add(match["id"])
                elif match:
                    names.add(match["name"])
    return ids, names


def _undo_lost_target(deployment: Deployment, target: DeploymentTarget) -> None:
    """Undo on its host what a lost worker left half done, as a failing target does itself: without this, the new
    container of a failed deployment keeps running (holding the ports) while the release it was replacing stays
    stopped. Only the container this target made is removed (made_by_target); the previous ones it stopped start
    again unless a newer release of the app runs there now (it holds the ports, and it is what should serve)."""

    def say(line: str) -> None:
        jobs.append_log(deployment, [f"[{target.host_name}] {line}"])

    stopped_ids, stopped_names = _stopped_for_ports(deployment, target)
    try:
        # The reaper runs in the periodic host check: a silent host must not hold it up.
        with target.host.engine(timeout=CHECK_TIMEOUT_SECONDS) as engine:
            containers = app_containers(engine, deployment)
            newer = [c["name"] for c in containers if c["state"] in ("running", "restarting")
                     and c["labels"].get(LABEL_DEPLOYMENT, "").isdigit()
                     and int(c["labels"][LABEL_DEPLOYMENT]) > deployment.pk]
            for container in containers:
                if made_by_target(container, deployment, target):
                    say(f"removing {container['name']}, left half-made by the lost worker")
                    engine_containers.act_on_container(engine, container["id"], "remove")
                elif ((container["id"][:12] in stopped_ids or container["name"] in stopped_names)
                      and container["state"] not in ("running", "restarting")):
                    if newer:
                        say(f"{container['name']} stays stopped: a newer release ({', '.join(newer)}) runs here")
                        continue
                    engine_containers.act_on_container(engine, container["id"], "start")
                    say(f"{container['name']} serves again")
    except EngineError as exc:
        say(f"could not undo what the lost worker left on this host: {exc}")


def _run_target_in_thread(deployment_id: int, target_id: int) -> None:
    try:
        deployment = Deployment.objects.get(pk=deployment_id)
        target = DeploymentTarget.objects.select_related("host").get(pk=target_id)
        try:
            run_target(deployment, target)
        except Exception as exc:  # a bug or the database, not the host: the target ends all the same
            log.exception("Deployment #%s: the target on %s stopped unexpectedly", deployment_id, target.host_name)
            DeploymentTarget.objects.filter(pk=target.pk, status__in=ACTIVE_STATUSES).update(
                status=JobStatus.FAILED, error=f"stopped unexpectedly: {exc}", step="", finished_at=timezone.now())
    finally:
        # Each thread has its own database connection: close it, or the pool leaks one per target.
        connections.close_all()


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
    if deployment.swarm is not None:
        _run_swarm_target(deployment, target, say)
        return
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


def _run_swarm_target(deployment: Deployment, target: DeploymentTarget, say) -> None:
    """A deployment to a swarm (fleet/services/swarm_deployer.py): the target's host is the manager, the service
    Swarm schedules and rolls over is what the target follows."""
    from fleet.services.swarm_deployer import deploy_service

    try:
        if target.host is None:
            raise TargetFailed("the host was removed from the console")
        url = deploy_service(deployment, target, say)
    except (EngineError, TargetFailed) as exc:
        message = str(exc)
        say(f"failed: {message}")
        _update_target(target, status=JobStatus.FAILED, error=message, step="", finished_at=timezone.now())
        return
    _update_target(target, status=JobStatus.SUCCEEDED, url=url, step="", finished_at=timezone.now())


def _ensure_image(deployment: Deployment, target: DeploymentTarget, engine: Engine, say) -> tuple[str, str]:
    """Bring the image to the host: a pull with stored credentials, or a save->load stream from the build engine.
    Returns (the reference to create the container from, the digest to label it with)."""
    if deployment.registry_account_id:
        account = pull_account(deployment)
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
    """The containers of the deployment's app on a host: its name AND its owner's, made by this console
    (fleet/instance.py), so that a deployment named like another user's app on a shared host, or like an app of
    another console's deploying there, never touches those containers. A container from before the owner label
    counts when its deployment id is one of the owner's deployments."""
    labelled = engine_containers.list_containers(engine, labels={LABEL_MANAGED: "true", LABEL_NAME: deployment.name})
    named = [container for container in labelled if made_by_this_console(container["labels"])]
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
    old = app_containers(engine, deployment)
    for container in old:
        if made_by_target(container, deployment, target):
            # Left by an earlier attempt of this same target (a worker that died): start afresh.
            engine_containers.act_on_container(engine, container["id"], "remove")
    old = [container for container in old if not made_by_target(container, deployment, target)]
    container_name = _free_container_name(engine, deployment)
    serving = [container for container in old if container["state"] in ("running", "restarting")]
    _, _, has_health = engine_containers.image_identity(engine, reference)
    spec = engine_containers.ContainerSpec(
        image=reference, name=container_name, ports=deployment.ports, env=deployment.env,
        labels={LABEL_MANAGED: "true", LABEL_NAME: deployment.name, LABEL_OWNER: str(deployment.owner_id),
                LABEL_DEPLOYMENT: str(deployment.pk), LABEL_TARGET: str(target.pk), LABEL_CONSOLE: console_mark(),
                LABEL_DIGEST: digest},
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
            names = ", ".join(f"{container['name']} ({container['id'][:12]})" for container in serving)
            # On record before they stop: the reaper of a lost worker starts again the ones this line names.
            say(STOPPING_FOR_PORTS.format(names=names), durable=True)
            for container in serving:
                engine_containers.act_on_container(engine, container["id"], "stop")
        _update_target(target, step="starting")
        engine_containers.act_on_container(engine, new_id, "start")
        started = time.monotonic()
        if not has_health and any(port.endswith("/tcp") for port in deployment.ports):
            # Its ports answering where the deployment says the app is: the proof that it serves, and sooner
            # than a fixed wait (the hand-over from the old container is as short as the app's start).
            _update_target(target, step="waiting until its ports answer")
            reason = _wait_for_ports(deployment, target, engine, new_id, started + PORT_GRACE_SECONDS, say)
        else:
            _update_target(target, step="waiting until healthy" if has_health else "waiting until it stays up")
            reason = engine_containers.wait_until_serving(
                engine, new_id, grace=START_GRACE_SECONDS, health_timeout=HEALTH_TIMEOUT_SECONDS,
                has_health=has_health)
    except Exception as exc:  # noqa: BLE001 - whatever stopped it, the previous container must serve again
        reason = str(exc) if isinstance(exc, EngineError) else f"the deployment stopped unexpectedly: {exc}"
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


def _free_container_name(engine: Engine, deployment: Deployment) -> str:
    """`<app>-<deployment id>`, unless a container that is not this deployment's holds that name (another
    console's on a shared engine, whose ids are its own): then the name carries this console's mark too."""
    name = f"{deployment.name}-{deployment.pk}"
    try:
        engine_containers.get_container(engine, name)
    except EngineNotFound:
        return name
    return f"{name}-{console_mark()[:8]}"


def _wait_for_ports(deployment: Deployment, target: DeploymentTarget, engine: Engine, container_id: str,
                    deadline: float, say) -> str:
    """Each published TCP port accepts a connection on the host's address (where the deployment says the app
    answers) before `deadline`; "" when they all do, else why not. The address is checked as every connection the
    console makes for a user is (console/netpolicy.py), and connected to as checked. UDP ports cannot be told
    apart from silence, so they are not checked (said in the log)."""
    address = target.host.address
    tcp = sorted(host_port for port, host_port in deployment.ports.items() if port.endswith("/tcp"))
    udp = sorted(host_port for port, host_port in deployment.ports.items() if port.endswith("/udp"))
    if udp:
        say(f"UDP port(s) {', '.join(map(str, udp))} not checked (UDP gives no answer to check)")
    if not tcp:
        return ""
    try:
        addresses = netpolicy.resolve_checked(address, None, user=deployment.owner, purpose=netpolicy.HOST)
    except netpolicy.DestinationRefused as exc:
        return f"its ports could not be checked: {exc}"
    waiting = time.monotonic()
    for port in tcp:
        while not _accepts(addresses, port):
            state = engine_containers.container_state(engine, container_id)
            if not state.get("Running") or state.get("Restarting"):
                output = engine_containers.container_logs(engine, container_id, tail=5).strip()
                reason = f"the container exited with code {state.get('ExitCode')} before port {port} answered"
                return f"{reason}; its last output: {output}" if output else reason
            if time.monotonic() >= deadline:
                return (f"port {port} on {address} accepted no connection within {PORT_GRACE_SECONDS:g} seconds "
                        "of the start (is the app listening on the port the deployment publishes?)")
            time.sleep(0.25)
        say(f"port {port} on {address} accepts connections ({time.monotonic() - waiting:.1f} s)")
    state = engine_containers.container_state(engine, container_id)
    if not state.get("Running") or state.get("Restarting"):
        return f"the container exited with code {state.get('ExitCode')} right after its ports answered"
    return ""


def _accepts(addresses: list, port: int) -> bool:
    """Whether a TCP connection to `port` on one of `addresses` is accepted (and closed at once)."""
    for address in addresses:
        try:
            with socket.create_connection((str(address), port), timeout=1):
                return True
        except OSError:
            continue
    return False
