"""A deployment to a swarm, on a worker: the app as one Swarm service on the manager the target names. The first
deployment of an app creates the service, the next ones update it; Swarm schedules the tasks, rolls them over with
the deployment's update settings and rolls back by itself; the console pins the image by digest, sends the
registry credentials with the service (every node it schedules a task on pulls with them), and follows the rollout
until the new tasks run or Swarm gives up (console/engine/swarm.py reads the service and its tasks)."""

from __future__ import annotations

import time
from typing import Any

from console import references
from console.engine import Engine, EngineError, EngineNotFound
from console.engine import swarm as engine_swarm
from fleet.constants import (
    LABEL_CONSOLE,
    LABEL_DEPLOYMENT,
    LABEL_DIGEST,
    LABEL_MANAGED,
    LABEL_NAME,
    LABEL_OWNER,
    LABEL_TARGET,
    SWARM_POLL_SECONDS,
    SWARM_POLL_TIMEOUT,
    SWARM_ROLLOUT_TIMEOUT,
    SWARM_SCALE_TIMEOUT,
    SWARM_SILENCE_SECONDS,
    SWARM_TASK_FAILURES,
    RestartPolicy,
)
from fleet.instance import console_mark
from fleet.models import Deployment, DeploymentTarget
from fleet.services.deployments import service_name
from fleet.services.swarm_apps import service_is_ours
from fleet.services.targets import (
    REFUSED_RE,
    TargetFailed,
    _auth_config,
    _update_target,
    pull_account,
    service_credentials,
)
from fleet.services.timeline import remember_states

# A container's restart policy -> a task's restart condition (Swarm has no "unless stopped": a service's tasks
# are stopped by scaling or removing it).
RESTART_CONDITIONS = {RestartPolicy.NO: "none", RestartPolicy.ON_FAILURE: "on-failure",
                      RestartPolicy.ALWAYS: "any", RestartPolicy.UNLESS_STOPPED: "any"}
# Task states of a task that ended badly (moby api/types/swarm/task.go).
FAILED_TASK_STATES = ("failed", "rejected", "orphaned")
# A service's UpdateStatus.State while Swarm rolls an update over (moby api/types/swarm/service.go).
UPDATE_UPDATING = "updating"


def deploy_service(deployment: Deployment, target: DeploymentTarget, say) -> str:
    """Create or update the app's service on the swarm target's manager and follow the rollout (or, for a scale,
    change its replica count: scale_service); returns the URL of one node that runs a task (its first port), or "".
    TargetFailed (or EngineError) says why not."""
    if deployment.scale_of_id is not None:
        return scale_service(deployment, target, say)
    account = pull_account(deployment)
    name = service_name(deployment.owner_id, deployment.name)
    with target.host.engine() as engine:
        repository, digest = _pin(engine, deployment, target, account, say)
        credentials = service_credentials(account, deployment.image)
        spec = _service_spec(deployment, target, name, f"{_tagged(deployment.image, repository)}@{digest}")
        existing = engine_swarm.find_service(engine, name)
        if existing is not None:
            _check_ours(existing, deployment, name)
            previous = (existing.get("UpdateStatus") or {}).get("StartedAt", "")
            _update_target(target, step="updating the service")
            engine_swarm.update_service(engine, existing, spec, credentials)
            service_id = existing["ID"]
            say(f"updating service {name} ({service_id[:12]}) to {digest[:19]}: Swarm rolls its tasks over")
        else:
            _update_target(target, step="creating the service")
            service_id = engine_swarm.create_service(engine, spec, credentials)
            previous = None
            say(f"created service {name} ({service_id[:12]})")
        _update_target(target, container_id="", step="waiting for the new tasks to run")
        try:
            state = _follow(engine, deployment, target, service_id, digest, previous, say)
        except TargetFailed as exc:
            if previous is None and not isinstance(exc, ManagerSilent):
                # A first release that never ran leaves nothing behind: no release of the app ran before it.
                say(f"removing service {name}: no earlier release of it to keep")
                engine_swarm.remove_service(engine, service_id)
                _update_target(target, service={**target.service, "removed": True} if target.service else None)
            raise
    return _serving(deployment, name, digest, state, say)


def _serving(deployment: Deployment, name: str, digest: str, state: dict[str, Any], say) -> str:
    """Say where the service's tasks run; the URL of one of them (its node, the first port), or ""."""
    running = [task for task in state["tasks"] if task["state"] == "running" and task["desired_state"] == "running"]
    say(f"service {name}: {len(running)} task(s) running {digest[:19]} on "
        f"{', '.join(sorted({task['node'] for task in running})) or 'no node'}")
    if deployment.ports and running:
        return f"http://{running[0]['node']}:{next(iter(deployment.ports.values()))}/"
    return ""


class ManagerSilent(TargetFailed):
    """The manager stopped answering while the console followed the rollout: nothing can be undone from here."""


def scale_service(deployment: Deployment, target: DeploymentTarget, say) -> str:
    """A scale (fleet/services/swarm_apps.py): the service of the release it scales gets the new replica count
    and nothing else (its task template stays, so Swarm rolls no task; the service's labels name this deployment
    and the pull credentials are renewed), then the run follows until that many tasks run and no other."""
    account = pull_account(deployment)
    name = service_name(deployment.owner_id, deployment.name)
    replicas = deployment.swarm["replicas"]
    digest = deployment.image_digest.rpartition("@")[2]
    with target.host.engine() as engine:
        existing = engine_swarm.find_service(engine, name)
        if existing is None:
            raise TargetFailed(f"the swarm no longer has the service {name}: deploy the app again")
        _check_ours(existing, deployment, name)
        running_digest = engine_swarm.service_image(existing).rpartition("@")[2]
        if running_digest != digest:
            raise TargetFailed(f"service {name} runs {running_digest[:19] or 'another image'} now, not "
                               f"{digest[:19]}: it changed since this release; deploy the app again")
        before = ((existing["Spec"].get("Mode") or {}).get("Replicated") or {}).get("Replicas")
        labels = {**(existing["Spec"].get("Labels") or {}), LABEL_DEPLOYMENT: str(deployment.pk)}
        _update_target(target, step="scaling the service")
        engine_swarm.scale_service(engine, existing, replicas, labels, service_credentials(account, deployment.image))
        say(f"scaling service {name} ({existing['ID'][:12]}) from {before} to {replicas} replica(s); its running "
            "tasks stay as they are")
        _update_target(target, container_id="", step=f"waiting for {replicas} task(s) to run")
        # Read through a connection of its own with a short timeout, as a rollout is (_follow).
        with target.host.engine(timeout=SWARM_POLL_TIMEOUT) as poller:
            state = _follow_scale(poller, target, existing["ID"], digest, replicas, say)
    return _serving(deployment, name, digest, state, say)


def _follow_scale(engine: Engine, target: DeploymentTarget, service_id: str, digest: str, replicas: int,
                  say) -> dict[str, Any]:
    """Poll the service until exactly `replicas` of its tasks run the release's digest and no task it stops still
    runs; TargetFailed at the timeout, with what Swarm said of the tasks that did not run (no suitable node...),
    ManagerSilent when the manager stops answering."""
    deadline = time.monotonic() + SWARM_SCALE_TIMEOUT
    said = ""
    silence = _Silence(target, say)
    while True:
        read = silence.read(engine, service_id)
        if read is None:
            continue
        state = remember_states(target.service, read)
        _update_target(target, service=state)
        current = [task for task in state["tasks"] if task["desired_state"] == "running"]
        running = [task for task in current if task["state"] == "running" and task["image_digest"] == digest]
        stopping = [task for task in state["tasks"] if task["desired_state"] != "running"
                    and task["state"] == "running"]
        line = f"{len(running)} of {replicas} task(s) running" + (f", {len(stopping)} stopping" if stopping else "")
        if line != said:
            say(line)
            said = line
        if len(current) == replicas and len(running) == replicas and not stopping:
            return state
        if time.monotonic() > deadline:
            waiting = sorted({task["error"] or task["message"] for task in current if task["state"] != "running"}
                             - {""})
            raise TargetFailed(f"{len(running)} of {replicas} task(s) ran within {SWARM_SCALE_TIMEOUT:g} seconds"
                               + (f": {'; '.join(waiting)}" if waiting else ""))
        time.sleep(SWARM_POLL_SECONDS)


def _tagged(image: str, repository: str) -> str:
    """`repo:tag` of the reference asked for (the tag stays in the service's spec, as `docker service ls` shows)."""
    _, tag = references.split(image)
    return f"{repository}:{tag}" if tag and not tag.startswith("sha256:") else repository


def _pin(engine: Engine, deployment: Deployment, target: DeploymentTarget, account, say) -> tuple[str, str]:
    """(repository, digest) of the deployment's image: the digest it names, else the one the registry answers
    for its tag now, recorded on the deployment (a rollback redeploys exactly it)."""
    repository, tag = references.split(deployment.image)
    if tag and tag.startswith("sha256:"):
        return repository, tag
    _update_target(target, step="asking the registry for the image's digest")
    try:
        digest = engine_swarm.resolve_digest(engine, deployment.image, _auth_config(account, deployment.image))
    except EngineError as exc:
        if REFUSED_RE.search(str(exc)):
            raise TargetFailed(f"the registry refused the credentials of registry account {account.name}: "
                               f"{exc}") from exc
        raise
    say(f"{deployment.image} is {digest} (registry account {account.name}); every node pulls that")
    Deployment.objects.filter(pk=deployment.pk).update(image_digest=f"{repository}@{digest}")
    return repository, digest


def _service_spec(deployment: Deployment, target: DeploymentTarget, name: str, image: str) -> engine_swarm.ServiceSpec:
    settings = deployment.swarm
    labels = {LABEL_MANAGED: "true", LABEL_NAME: deployment.name, LABEL_OWNER: str(deployment.owner_id),
              LABEL_DEPLOYMENT: str(deployment.pk), LABEL_CONSOLE: console_mark(),
              LABEL_DIGEST: image.rpartition("@")[2]}
    placement = settings.get("placement") or {}
    return engine_swarm.ServiceSpec(
        name=name, image=image, labels=labels, container_labels={**labels, LABEL_TARGET: str(target.pk)},
        env=deployment.env, ports=deployment.ports, global_mode=settings.get("mode") == "global",
        replicas=settings.get("replicas") or 0, constraints=tuple(placement.get("constraints") or ()),
        max_replicas_per_node=placement.get("max_replicas_per_node"), update=settings.get("update"),
        rollback=settings.get("rollback"), restart_condition=RESTART_CONDITIONS.get(deployment.restart_policy, "any"),
        memory_limit=deployment.memory_limit, cpus=deployment.cpus, user=deployment.user,
    )


def _check_ours(service: dict[str, Any], deployment: Deployment, name: str) -> None:
    if not service_is_ours(service, deployment.owner_id, deployment.name):
        raise TargetFailed(f"the swarm has a service named {name} that this console did not deploy as your app "
                           f"{deployment.name}: it is left alone; remove or rename it, or name the app otherwise")


def _follow(engine: Engine, deployment: Deployment, target: DeploymentTarget, service_id: str, digest: str,
            previous: str | None, say) -> dict[str, Any]:
    """_follow_rollout, reading the service through a connection of its own with a short timeout: a frozen manager
    accepts connections and never answers, and each reading must end soon enough to tell."""
    with target.host.engine(timeout=SWARM_POLL_TIMEOUT) as poller:
        return _follow_rollout(poller, deployment, target, service_id, digest, previous, say)


class _Silence:
    """How long the manager has not answered a reading of the service: a short silence (a leader election, a
    busy manager) is waited out, one of SWARM_SILENCE_SECONDS ends the follow (ManagerSilent)."""

    def __init__(self, target: DeploymentTarget, say) -> None:
        self.target, self.say, self.since = target, say, None

    def read(self, engine: Engine, service_id: str) -> dict[str, Any] | None:
        try:
            state = engine_swarm.service_state(engine, service_id)
        except EngineNotFound:
            # The service is gone (removed behind the console's back): the manager answers, and says so.
            raise
        except EngineError as exc:
            now = time.monotonic()
            if self.since is None:
                self.since = now
                self.say(f"the manager does not answer ({exc}); trying again for {SWARM_SILENCE_SECONDS:g} s")
            if now - self.since >= SWARM_SILENCE_SECONDS:
                host = self.target.host
                raise ManagerSilent(
                    f"the manager {host.name} ({host.url}) does not answer: nothing from it for "
                    f"{now - self.since:.0f} seconds ({exc}). Swarm goes on with the rollout (or back) by "
                    "itself; check the host, then deploy again or look at the service") from exc
            time.sleep(SWARM_POLL_SECONDS)
            return None
        if self.since is not None:
            self.say(f"the manager answers again after {time.monotonic() - self.since:.0f} s")
            self.since = None
        return state


def _follow_rollout(engine: Engine, deployment: Deployment, target: DeploymentTarget, service_id: str, digest: str,
                    previous: str | None, say) -> dict[str, Any]:
    """Poll the service until its new tasks run (the update, if one, completed); TargetFailed when Swarm rolled
    the update back or paused it, when a new service's tasks keep failing, or at the timeout. `previous` is the
    StartedAt of the service's last update before this one ("" for none), None for a service just created."""
    settings = deployment.swarm
    update = settings.get("update") or {}
    replicas = settings.get("replicas")
    # Swarm waits `delay` between batches and watches each for `monitor` (5 s unless said).
    batches = max(1, replicas or 1)
    timeout = SWARM_ROLLOUT_TIMEOUT + batches * (update.get("delay", 0) + update.get("monitor", 5))
    deadline = time.monotonic() + timeout
    said, reason = "", ""
    silence = _Silence(target, say)
    monitor, converged_at = update.get("monitor", 5), None
    while True:
        read = silence.read(engine, service_id)
        if read is None:
            continue
        # Each task keeps the states this deployment saw it in (fleet/services/timeline.py), for the page's timeline.
        state = remember_states(target.service, read)
        _update_target(target, service=state)
        updating = previous is not None and state["update_started"] not in ("", previous)
        update_state = state["update_state"] if updating else ""
        current = [task for task in state["tasks"] if task["desired_state"] == "running"]
        new = [task for task in state["tasks"] if task["image_digest"] == digest]
        new_running = [task for task in current if task["image_digest"] == digest and task["state"] == "running"]
        failed = [task for task in new if task["state"] in FAILED_TASK_STATES]
        line = f"{len(new_running)} of {replicas if replicas is not None else len(current)} new task(s) running"
        line += f"; Swarm's update is {update_state}" if update_state else ""
        line += f" ({state['update_message']})" if update_state and state["update_message"] else ""
        if line != said:
            say(line)
            said = line
        if update_state == engine_swarm.UPDATE_ROLLBACK_STARTED:
            # Why Swarm rolls back is said while it does; once done, its message is only "rollback completed".
            reason = reason or state["update_message"]
        rolled_back = update_state == engine_swarm.UPDATE_ROLLBACK_COMPLETED
        all_running = bool(current) and all(task["state"] == "running" for task in current) and (
            replicas is None or len(current) >= replicas)
        if rolled_back and not all_running and time.monotonic() < deadline:
            # Swarm calls the rollback complete once it rescheduled the previous tasks; the target records them
            # running, so that what it shows is what serves.
            time.sleep(SWARM_POLL_SECONDS)
            continue
        if rolled_back:
            serving = ("the previous release keeps serving" if all_running else
                       f"the previous release's tasks did not all run again within {timeout:g} seconds")
            raise TargetFailed(f"rolled back by Swarm after: {_rollback_cause(reason, failed)}; {serving}")
        if update_state in (engine_swarm.UPDATE_PAUSED, engine_swarm.UPDATE_ROLLBACK_PAUSED):
            raise TargetFailed(f"Swarm paused the {'rollback' if 'rollback' in update_state else 'update'}: "
                               f"{state['update_message']}")
        if previous is None and len(failed) >= SWARM_TASK_FAILURES:
            raise TargetFailed(f"the service's new tasks keep failing: {failed[0]['error'] or failed[0]['state']}")
        # Every deployment changes the tasks' labels (its id), so an update of the service always rolls.
        settled = previous is None or update_state == engine_swarm.UPDATE_COMPLETED
        enough = len(new_running) >= replicas if replicas is not None else bool(current)
        converged = enough and len(new_running) == len(current)
        if settled and converged:
            return state
        # Converged and stable for the monitor window, as `docker service update` judges it: Swarm itself says
        # "completed" one update delay later (it waits the delay after the last batch too, then the window again).
        converged_at = (converged_at or time.monotonic()) if converged and update_state == UPDATE_UPDATING else None
        if converged_at is not None and time.monotonic() - converged_at >= monitor:
            say(f"every task ran the new release for the monitor window ({monitor:g} s): the update is done "
                "(Swarm says completed after its delay)")
            return state
        if time.monotonic() > deadline:
            errors = sorted({task["error"] for task in failed if task["error"]})
            raise TargetFailed(f"the service's new tasks did not all run within {timeout:g} seconds"
                               + (f": {'; '.join(errors)}" if errors else ""))
        time.sleep(SWARM_POLL_SECONDS)


def _rollback_cause(reason: str, failed: list[dict[str, Any]]) -> str:
    """Why Swarm rolled back: its own words while it did (when the console saw them; a quick rollback is over
    within one poll, and then Swarm says only "rollback completed"), with the failed new tasks' errors."""
    errors = "; ".join(sorted({f"{task['error'] or task['state']} on {task['node']}" for task in failed}))
    if reason:
        return f"{reason} ({errors})" if errors else reason
    return f"the new release's task failed: {errors}" if errors else "its update failed"
