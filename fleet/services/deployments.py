"""Deployments, what the user asks for: validating the app, its image, hosts and limits, creating the
deployment and its targets, the release history (previous_release) and rollbacks. fleet/services/deployer.py
runs what is created here."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from console import jobs, units
from console.audit.constants import Action
from console.audit.services import record
from console.constants import ACTIVE_STATUSES
from console.engine import EngineUnavailable
from console.references import DEFAULT_DOMAIN, InvalidReference, parse, split_domain
from fleet.constants import HostStatus, RestartPolicy
from fleet.models import Deployment, DeploymentTarget, Host
from fleet.services.hosts import check_host, parse_selector
from registry.services import grant_image
from registry.tokens import namespace_of

# The task a worker deploys with (fleet/tasks.py), sent by name.
RUN_DEPLOYMENT_TASK = "fleet.run_deployment"

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MIN_MEMORY = units.MINIMUM_MEMORY
# What `docker run --cpus` takes.
MIN_CPUS, MAX_CPUS = 0.01, 1024
# A swarm deployment's settings (besides what any deployment takes), as the API and Deployment.swarm name them.
SWARM_FIELDS = ("mode", "replicas", "placement", "update", "rollback")
SWARM_MODES = ("replicated", "global")
MAX_REPLICAS = 1000
# `docker service create --constraint`: node.id, node.hostname, node.role, node.platform.*, node.labels.*,
# engine.labels.*, each == or != a value.
CONSTRAINT_RE = re.compile(r"^(node|engine)\.[A-Za-z0-9_.-]+\s*(==|!=)\s*[^\s=!]+$")
MAX_CONSTRAINTS = 20
UPDATE_ORDERS = ("stop-first", "start-first")
# Swarm rolls back a failed update, pauses it or carries on; a failed rollback can only pause or carry on.
UPDATE_FAILURE_ACTIONS = ("rollback", "pause", "continue")
ROLLBACK_FAILURE_ACTIONS = ("pause", "continue")
# Longest delay and monitor window (seconds): an hour.
MAX_SWARM_SECONDS = 3600
# Swarm names services like DNS labels; the console adds `-u<owner id>` (service_name).
SERVICE_NAME_RE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$")
MAX_SERVICE_NAME = 63


def clean_ports(value: Any) -> dict[str, int]:
    """{"8080/tcp": 8080} (or "8080": 8080, or rows of (container port, host port)) -> {"8080/tcp": 8080}."""
    if value in (None, ""):
        return {}
    items = value.items() if isinstance(value, dict) else value
    if not isinstance(items, list | tuple) and not isinstance(value, dict):
        raise ValidationError({"ports": 'Ports are an object like {"8080/tcp": 8080}.'})
    ports: dict[str, int] = {}
    for item in items:
        try:
            container_port, host_port = item
        except (TypeError, ValueError):
            raise ValidationError({"ports": 'Ports are an object like {"8080/tcp": 8080}.'}) from None
        number, _, protocol = str(container_port).strip().partition("/")
        protocol = protocol or "tcp"
        try:
            number_value, host_value = int(number), int(host_port)
        except (TypeError, ValueError):
            raise ValidationError({"ports": f"{container_port!r}: ports are numbers."}) from None
        if protocol not in ("tcp", "udp") or not 1 <= number_value <= 65535 or not 1 <= host_value <= 65535:
            raise ValidationError({"ports": f"{container_port!r} -> {host_port!r}: ports are 1-65535, tcp or udp."})
        if host_value in ports.values():
            raise ValidationError({"ports": f"Host port {host_value} is published twice."})
        ports[f"{number_value}/{protocol}"] = host_value
    return ports


def clean_env(value: Any) -> dict[str, str]:
    if value in (None, ""):
        return {}
    items = value.items() if isinstance(value, dict) else value
    env: dict[str, str] = {}
    try:
        pairs = list(items)
    except TypeError:
        raise ValidationError({"env": 'The environment is an object like {"WHO": "World"}.'}) from None
    for pair in pairs:
        try:
            key, item = pair
        except (TypeError, ValueError):
            raise ValidationError({"env": 'The environment is an object like {"WHO": "World"}.'}) from None
        if not ENV_KEY_RE.match(str(key)):
            raise ValidationError({"env": f"{key!r} is not a variable name (letters, digits, _)."})
        if not isinstance(item, str | int | float) or isinstance(item, bool):
            raise ValidationError({"env": f"The value of {key} is text."})
        env[str(key)] = str(item)
    return env


def clean_memory(value: Any) -> int | None:
    """Bytes, or text like "64m", "1g" or "1.5g" (console/units.py reads it as `docker run --memory` does)."""
    if value in (None, "", 0):
        return None
    if isinstance(value, bool):
        raise ValidationError({"memory_limit": "Give bytes or a size like 64m."})
    try:
        number = value if isinstance(value, int) else units.parse_memory(str(value).strip())
    except units.UnitError:
        raise ValidationError({"memory_limit": "Give bytes or a size like 64m or 1g."}) from None
    if number < MIN_MEMORY:
        raise ValidationError({"memory_limit": "The engine needs at least 6m for a container."})
    return number


def clean_cpus(value: Any) -> float | None:
    if value in (None, "", 0):
        return None
    try:
        cpus = units.parse_cpus(value)
    except units.UnitError:
        raise ValidationError({"cpus": "cpus is a number, like 0.5."}) from None
    if not MIN_CPUS <= cpus <= MAX_CPUS:
        raise ValidationError({"cpus": "cpus is between 0.01 and 1024."})
    return cpus


def select_hosts(owner, host_ids: list[int] | None, selector: str) -> list[Host]:
    """The hosts a deployment goes to: chosen by id, or every host of the owner whose labels match."""
    owned = Host.objects.for_user(owner)
    if host_ids and selector:
        raise ValidationError({"hosts": "Choose hosts or give a selector, not both."})
    if host_ids:
        ids = list(dict.fromkeys(host_ids))
        hosts = list(owned.filter(pk__in=ids))
        missing = sorted(set(ids) - {host.pk for host in hosts})
        if missing:
            raise ValidationError({"hosts": f"You have no host with id {', '.join(map(str, missing))}."})
        return hosts
    if selector:
        labels = parse_selector(selector)
        if not labels:
            raise ValidationError({"selector": "A selector is key=value, like env=prod."})
        hosts = [host for host in owned if host.matches(labels)]
        if not hosts:
            raise ValidationError({"selector": f"None of your hosts has the labels {selector}."})
        return hosts
    raise ValidationError({"hosts": "Choose at least one host, or give a selector like env=prod."})


def service_name(owner_id: int, name: str) -> str:
    """The swarm service of app `name`: the app's name in its owner's namespace, so that two users' apps of one
    name on a shared swarm never collide (the service's labels say which console and owner made it too)."""
    return f"{name}-u{owner_id}"


def _part_error(field: str, part: str, message: str) -> ValidationError:
    """A refusal of one part of a setting (`update`'s `order`): the API says it on `field`; the error's code names
    the part, so that a form with a `<field>_<part>` input shows it there (console.errors.add_domain_error)."""
    return ValidationError({field: ValidationError(message, code=part)})


def _swarm_seconds(field: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _part_error(field, key, f"{key} is seconds, like 5 or 0.5.")
    try:
        seconds = float(str(value).strip().removesuffix("s"))
    except ValueError:
        raise _part_error(field, key, f"{key} is seconds, like 5 or 0.5.") from None
    if not 0 <= seconds <= MAX_SWARM_SECONDS:
        raise _part_error(field, key, f"{key} is between 0 and {MAX_SWARM_SECONDS} seconds.")
    return seconds


def clean_update_settings(field: str, value: Any) -> dict[str, Any] | None:
    """`update` or `rollback`: {parallelism, delay, order, failure_action, monitor, max_failure_ratio}, each
    optional (Swarm's defaults: 1, 0 s, stop-first, pause for updates, 5 s, 0)."""
    if value in (None, ""):
        return None
    if not isinstance(value, dict):
        raise ValidationError({field: f"{field} is an object like {{\"parallelism\": 1, \"delay\": 5, "
                                      f"\"order\": \"start-first\", \"failure_action\": \"rollback\"}}."})
    known = ("parallelism", "delay", "order", "failure_action", "monitor", "max_failure_ratio")
    if unknown := sorted(set(value) - set(known)):
        raise ValidationError({field: f"{field} takes {', '.join(known)}; not {', '.join(map(str, unknown))}."})
    actions = UPDATE_FAILURE_ACTIONS if field == "update" else ROLLBACK_FAILURE_ACTIONS
    settings: dict[str, Any] = {}
    if (parallelism := value.get("parallelism")) is not None:
        if isinstance(parallelism, bool) or not isinstance(parallelism, int) or not 0 <= parallelism <= MAX_REPLICAS:
            raise _part_error(field, "parallelism",
                              f"parallelism is how many tasks at once: 0 (all) to {MAX_REPLICAS}.")
        settings["parallelism"] = parallelism
    for key in ("delay", "monitor"):
        if value.get(key) is not None:
            settings[key] = _swarm_seconds(field, key, value[key])
    if (order := value.get("order")) is not None:
        if order not in UPDATE_ORDERS:
            raise _part_error(field, "order", f"order is one of {', '.join(UPDATE_ORDERS)}.")
        settings["order"] = order
    if (action := value.get("failure_action")) is not None:
        if action not in actions:
            raise _part_error(field, "failure_action", f"failure_action is one of {', '.join(actions)}.")
        settings["failure_action"] = action
    if (ratio := value.get("max_failure_ratio")) is not None:
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
            raise _part_error(field, "max_failure_ratio",
                              "max_failure_ratio is a fraction of the tasks, between 0 and 1.")
        settings["max_failure_ratio"] = float(ratio)
    return settings


def clean_placement(value: Any) -> dict[str, Any]:
    """Constraints (a list, or {constraints, max_replicas_per_node}): `node.labels.tier==web`, `node.role!=manager`."""
    if value in (None, ""):
        return {"constraints": [], "max_replicas_per_node": None}
    if isinstance(value, list):
        value = {"constraints": value}
    if not isinstance(value, dict) or set(value) - {"constraints", "max_replicas_per_node"}:
        raise ValidationError({"placement": 'placement is a list of constraints like ["node.labels.tier==web"], or '
                                            '{"constraints": [...], "max_replicas_per_node": 1}.'})
    constraints = value.get("constraints") or []
    if not isinstance(constraints, list) or len(constraints) > MAX_CONSTRAINTS:
        raise _part_error("placement", "constraints", f"constraints are a list of at most {MAX_CONSTRAINTS}.")
    for constraint in constraints:
        if not isinstance(constraint, str) or not CONSTRAINT_RE.match(constraint.strip()):
            raise _part_error("placement", "constraints", f"{constraint!r} is no constraint: node.labels.KEY==VALUE, "
                                                          "node.role!=manager, node.hostname==NAME...")
    per_node = value.get("max_replicas_per_node")
    if per_node is not None and (isinstance(per_node, bool) or not isinstance(per_node, int)
                                 or not 1 <= per_node <= MAX_REPLICAS):
        raise _part_error("placement", "max_replicas_per_node", f"max_replicas_per_node is 1 to {MAX_REPLICAS}.")
    return {"constraints": [constraint.strip() for constraint in constraints], "max_replicas_per_node": per_node}


def check_managers(hosts: list[Host]) -> None:
    """Check each swarm manager among `hosts` now (fleet/services/hosts.py check_host records what it finds):
    a deployment to a swarm is one call to its manager, so one that does not answer refuses the deployment at
    once (EngineUnavailable, a 503) instead of a deployment that fails later; and clean_swarm decides on what
    the manager says now, not at its last check."""
    for host in hosts:
        if host.swarm is None:
            continue
        check_host(host)
        if host.status == HostStatus.DOWN:
            raise EngineUnavailable(f"The swarm manager {host.name} does not answer, so nothing was deployed: "
                                    f"{host.status_reason}")


def clean_swarm(owner, name: str, data: dict[str, Any], hosts: list[Host], account) -> dict[str, Any] | None:
    """A deployment's swarm settings, when its host is a swarm manager (as of its last check): one service,
    replicated (`replicas`, 1 unless said) or global, placed and updated as asked, pulled from a registry. None
    for a deployment to plain hosts, which takes none of these settings."""
    swarms = [host for host in hosts if host.swarm is not None]
    asked = [field for field in SWARM_FIELDS if data.get(field) not in (None, "")]
    if not swarms:
        if asked:
            raise ValidationError({asked[0]: f"{', '.join(asked)}: only a deployment to a swarm manager takes "
                                             "these; none of the chosen hosts is one (as of its last check)."})
        return None
    if len(hosts) > 1:
        raise ValidationError({"hosts": f"{swarms[0].name} is a swarm: a deployment to a swarm goes to its manager "
                                        "alone, and Swarm places the tasks on its nodes."})
    if account is None:
        raise ValidationError({"registry": "A swarm pulls from a registry: choose a registry account."})
    if not SERVICE_NAME_RE.match(name) or len(service_name(owner.pk, name)) > MAX_SERVICE_NAME:
        longest = MAX_SERVICE_NAME - len(service_name(owner.pk, ""))
        raise ValidationError({"name": "On a swarm the app's name is the service's: letters, digits and - (not "
                                       f"first or last), at most {longest}."})
    mode = data.get("mode") or "replicated"
    if mode not in SWARM_MODES:
        raise ValidationError({"mode": f"mode is one of {', '.join(SWARM_MODES)}."})
    replicas = data.get("replicas")
    if mode == "global":
        if replicas not in (None, ""):
            raise ValidationError({"replicas": "A global service runs one task on every node: it takes no replicas."})
        replicas = None
    else:
        replicas = 1 if replicas in (None, "") else replicas
        if isinstance(replicas, bool) or not isinstance(replicas, int) or not 0 <= replicas <= MAX_REPLICAS:
            raise ValidationError({"replicas": f"replicas is 0 to {MAX_REPLICAS}."})
    return {"mode": mode, "replicas": replicas, "placement": clean_placement(data.get("placement")),
            "update": clean_update_settings("update", data.get("update")),
            "rollback": clean_update_settings("rollback", data.get("rollback"))}


def _registry_account(owner, account_id: int | None):
    if account_id in (None, ""):
        return None
    try:
        from registry.models import RegistryAccount
    except ImportError:  # the registry app without accounts: nothing to pull with
        raise ValidationError({"registry": "This console has no registry accounts."}) from None
    account = RegistryAccount.objects.for_user(owner).filter(pk=account_id).first()
    if account is None:
        raise ValidationError({"registry": f"You have no registry account with id {account_id}."})
    return account


def resolve_image(owner, image: str, pulled: bool) -> tuple[str, str]:
    """(the reference to deploy, the image id when the console holds it).

    `image` is a registry reference (pulled on each host with the deployment's registry account), or one of the
    owner's images or a shared base image, by record number, tag, digest or id (builds/access.py decides; it is
    streamed to each host from the engine that holds it).
    """
    image = (image or "").strip()
    if not image or len(image) > 500 or any(char.isspace() for char in image):
        raise ValidationError({"image": "Name the image: a reference like hello:1 or an image id."})
    if pulled:
        return image, ""
    granted, image_id = grant_image(owner, image, missing=": build it again, or choose the registry to pull it from")
    if image.isdigit() and granted.record is not None:
        # A record number: the deployment shows the image by the owner's name for it (or its id).
        image = granted.record.tags[0] if granted.record.tags else image_id
    return image, image_id


def clean_follow(owner, value: Any) -> str:
    """`repository:tag` in the console's registry, under the owner's namespace (whose pushes are their events),
    or "" for a deployment that follows nothing."""
    text = (value or "").strip() if isinstance(value, str) or value is None else None
    if text is None:
        raise ValidationError({"follow_tag": "Name a repository:tag to follow, like alice/app:latest."})
    if not text:
        return ""
    try:
        reference = parse(text)
    except InvalidReference as exc:
        raise ValidationError({"follow_tag": f"{text[:100]!r} is not a repository:tag: {exc}."}) from None
    # Distribution's grammar reads `alice/app` as a domain and a path: the Docker CLI's rule tells a registry.
    domain, _ = split_domain(reference.name)
    if domain != DEFAULT_DOMAIN or reference.name.startswith(f"{DEFAULT_DOMAIN}/") or reference.digest or (
            not reference.tag):
        raise ValidationError({"follow_tag": "Name a repository and a tag of the console's registry, like "
                                             f"{namespace_of(owner)}/app:latest (no registry address, no digest)."})
    if not reference.name.startswith(f"{namespace_of(owner)}/"):
        raise ValidationError({"follow_tag": f"You can follow tags under {namespace_of(owner)}/ only."})
    return f"{reference.name}:{reference.tag}"


def create_deployment(owner, data: dict[str, Any], rollback_of: Deployment | None = None,
                      redeploy_of: Deployment | None = None, trigger: dict | None = None,
                      scale_of: Deployment | None = None) -> Deployment:
    """Validate a deployment, make its row and one target per host, and queue it. Raises ValidationError.
    `trigger` says what started it when no one asked (a push to a followed tag, fleet/services/follow.py);
    `rollback_of` and `scale_of` (fleet/services/swarm_apps.py) keep the digest `data` pins."""
    name = (data.get("name") or "").strip()
    if not NAME_RE.match(name):
        raise ValidationError({"name": "Name the app with letters, digits and ._- (at most 63)."})
    account = _registry_account(owner, data.get("registry"))
    hosts = select_hosts(owner, data.get("hosts") or [], (data.get("selector") or "").strip())
    ports = clean_ports(data.get("ports"))
    env = clean_env(data.get("env"))
    restart_policy = data.get("restart_policy")
    if restart_policy not in (None, "", *RestartPolicy.values):
        raise ValidationError({"restart_policy": f"Choose one of {', '.join(RestartPolicy.values)}."})
    memory_limit = clean_memory(data.get("memory_limit"))
    cpus = clean_cpus(data.get("cpus"))
    user = (data.get("user") or "").strip()
    if len(user) > 100 or any(char.isspace() for char in user):
        raise ValidationError({"user": "A user is a name or uid[:gid], without spaces."})
    swarm = clean_swarm(owner, name, data, hosts, account)
    follow_tag = clean_follow(owner, data.get("follow_tag"))
    image, image_id = resolve_image(owner, data.get("image", ""), pulled=account is not None)
    if swarm is not None:
        # Last, once the request is known to be well formed: the manager now, then the settings again on what it
        # says now.
        check_managers(hosts)
        swarm = clean_swarm(owner, name, data, hosts, account)
    # Unless said, a container is not restarted; a service's tasks are (Swarm's own default, condition any): with
    # condition none Swarm replaces no task that ends, not even those of a node drained or lost.
    restart_policy = restart_policy or (RestartPolicy.ALWAYS if swarm is not None else RestartPolicy.NO)
    with transaction.atomic():
        busy = Deployment.objects.select_for_update().filter(owner=owner, name=name, status__in=ACTIVE_STATUSES)
        if active := busy.first():
            raise ValidationError({"name": f"{name} is being deployed right now (#{active.display_number}); "
                                           "wait for it."})
        deployment = Deployment.objects.create(
            owner=owner, name=name, image=image, image_id=image_id,
            image_digest=data.get("image_digest", "") if rollback_of or scale_of else "",
            registry_account_id=account.pk if account else None, selector=(data.get("selector") or "").strip(),
            ports=ports, env=env, restart_policy=restart_policy, memory_limit=memory_limit, cpus=cpus, user=user,
            rollback_of=rollback_of, scale_of=scale_of, swarm=swarm, follow_tag=follow_tag,
            follow_approval=bool(follow_tag and data.get("follow_approval")), trigger=trigger,
        )
        DeploymentTarget.objects.bulk_create(
            DeploymentTarget(deployment=deployment, host=host, host_name=host.name) for host in hosts
        )
        # The environment stays out of the event: its values may be passwords.
        detail = {"name": name, "image": image, "image_id": image_id, "hosts": [host.name for host in hosts],
                  "selector": deployment.selector, "registry": account.name if account else None}
        if swarm is not None:
            detail["swarm"] = swarm
        if redeploy_of is not None:
            detail.update(redeploy_of=redeploy_of.pk, redeploy_of_number=redeploy_of.display_number)
        if follow_tag:
            detail["follow_tag"] = follow_tag
        if trigger is not None:
            detail["trigger"] = trigger
        if scale_of is not None:
            detail.update(replicas=swarm["replicas"] if swarm else None, scale_of=scale_of.pk,
                          scale_of_number=scale_of.display_number)
            record(owner, Action.SCALE, target=deployment, detail=detail)
        elif rollback_of is None:
            record(owner, Action.DEPLOY_STARTED, target=deployment, detail=detail)
        else:
            detail.update(release=rollback_of.pk, release_number=rollback_of.display_number)
            record(owner, Action.ROLLBACK, target=deployment, detail=detail)
        _enqueue_deployment(deployment)
    return deployment


def _enqueue_deployment(deployment: Deployment) -> None:
    jobs.enqueue_on_commit(deployment, RUN_DEPLOYMENT_TASK)


def previous_release(deployment: Deployment) -> Deployment | None:
    """The last successful release of the same app before this deployment."""
    return Deployment.objects.releases(deployment.owner, deployment.name).filter(pk__lt=deployment.pk).first()


def rollback(deployment: Deployment) -> Deployment:
    """Redeploy the release before `deployment`, by image id (or registry digest), with its settings."""
    release = previous_release(deployment)
    if release is None:
        raise ValidationError({"detail": f"There is no successful release of {deployment.name} before "
                                         f"#{deployment.display_number} to roll back to."})
    image = release.image_digest or release.image_id or release.image
    hosts = [target.host_id for target in release.targets.all() if target.host_id]
    if not hosts:
        raise ValidationError({"detail": f"The hosts of release #{release.display_number} are gone."})
    data = {
        "name": release.name, "image": image, "image_digest": release.image_digest, "hosts": hosts,
        "ports": release.ports, "env": release.env, "restart_policy": release.restart_policy,
        "memory_limit": release.memory_limit, "cpus": release.cpus, "user": release.user,
        "registry": release.registry_account_id if release.image_digest else None, **(release.swarm or {}),
        "follow_tag": release.follow_tag, "follow_approval": release.follow_approval,
    }
    return create_deployment(deployment.owner, data, rollback_of=release)


def settings_of(deployment: Deployment) -> dict[str, Any]:
    """What `deployment` asked for, as create_deployment takes it: its image (by id when the console resolved
    it, so that the same image runs again whatever its tag means now; the reference when it was pulled), its
    hosts (or its selector, asked again), its ports, environment and limits."""
    pulled = deployment.registry_account_id is not None
    hosts = [] if deployment.selector else [target.host_id for target in deployment.targets.all() if target.host_id]
    return {
        "name": deployment.name,
        "image": deployment.image if pulled or not deployment.image_id else deployment.image_id,
        "hosts": hosts, "selector": deployment.selector, "ports": deployment.ports, "env": deployment.env,
        "restart_policy": deployment.restart_policy, "memory_limit": deployment.memory_limit,
        "cpus": deployment.cpus, "user": deployment.user, "registry": deployment.registry_account_id,
        **(deployment.swarm or {}), "follow_tag": deployment.follow_tag, "follow_approval": deployment.follow_approval,
    }


def redeploy(deployment: Deployment) -> Deployment:
    """Deploy again exactly what `deployment` asked for (settings_of): a retry of a failed deployment, or a
    fresh start of the running release. Raises ValidationError (hosts gone, the app busy, the image gone)."""
    data = settings_of(deployment)
    if not data["hosts"] and not data["selector"]:
        raise ValidationError({"detail": f"The hosts of #{deployment.display_number} are gone."})
    return create_deployment(deployment.owner, data, redeploy_of=deployment)


def current_release(owner, name: str) -> Deployment | None:
    """The release of app `name` that runs now: its last successful deployment."""
    return Deployment.objects.releases(owner, name).prefetch_related("targets").first()


def short_image_id(image_id: str) -> str:
    """`sha256:3f2a…` -> the 12 hex digits `docker images` shows."""
    return image_id.removeprefix("sha256:")[:12]


def release_label(deployment: Deployment, names: dict[str, str] | None = None) -> str:
    """How a page names a release: the tag it was asked for and its short image id (`hello:1 · 3f2a9c1b7d4e`),
    or, asked for by id (a rollback, a retry), the tag another release of the same image had (`names`, image id
    -> tag) or the short id alone."""
    short = short_image_id(deployment.image_id) if deployment.image_id else ""
    asked = deployment.image
    if asked.startswith("sha256:") or (short and asked.startswith(short)):
        asked = (names or {}).get(deployment.image_id, "")
    return " · ".join(part for part in (asked, short) if part) or deployment.image


def names_of(releases: list[Deployment]) -> dict[str, str]:
    """image id -> the tag a release of it was asked for by, for release_label."""
    return {release.image_id: release.image for release in reversed(releases)
            if release.image_id and not release.image.startswith("sha256:")
            and not release.image.startswith(short_image_id(release.image_id))}


def grouped_errors(deployment: Deployment) -> list[dict[str, Any]]:
    """The failed hosts' errors, each distinct text once with the hosts that gave it (a failure shared by four
    hosts is said once, not four times)."""
    groups: dict[str, list[str]] = {}
    for target in deployment.targets.all():
        if target.error:
            groups.setdefault(target.error, []).append(target.host_name)
    return [{"error": error, "hosts": hosts} for error, hosts in groups.items()]


def deployments_of_image(owner, image_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """The owner's deployments of one image (newest first, at most `limit`), each with whether it is the current
    release of its app; and for those that are, the URL each host answers on."""
    found = list(Deployment.objects.for_user(owner).filter(image_id=image_id).prefetch_related("targets")[:limit])
    current = {name: current_release(owner, name) for name in {deployment.name for deployment in found}}
    rows = []
    for deployment in found:
        is_current = current[deployment.name] is not None and current[deployment.name].pk == deployment.pk
        urls = [(target.host_name, target.url) for target in deployment.targets.all() if target.url]
        rows.append({"deployment": deployment, "current": is_current, "urls": urls if is_current else [],
                     "label": release_label(deployment)})
    return rows
