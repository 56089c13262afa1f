"""The fleet's work, for the browser and the API alike: hosts and their checks, containers, deployments.

A deployment runs all its targets at once in a thread pool inside its one Celery task: the work is waiting on
engines (network and disk on the hosts), so threads suffice, and one task keeps one job row, one claim, one log
and one place that decides the deployment's final status once every target has ended (a Celery group would
need a chord, hence a result backend, which the console does not run, and as many free workers as hosts).
"""

from __future__ import annotations

import logging
import posixpath
import re
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.utils import timezone

from builds import access
from console import jobs, netpolicy, references, units
from console.audit.constants import Action
from console.audit.services import record
from console.constants import ACTIVE_STATUSES, JobStatus
from console.engine import (
    Engine,
    EngineError,
    EngineNotFound,
    load_ssh_private_key,
    parse_ssh_host_key,
    ssh_host_key_line,
)
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
    MAX_LOG_TAIL,
    MAX_PARALLEL_TARGETS,
    START_GRACE_SECONDS,
    HostStatus,
    RestartPolicy,
)
from fleet.models import Deployment, DeploymentTarget, Host

log = logging.getLogger(__name__)

# The task a worker deploys with (fleet/tasks.py), sent by name.
RUN_DEPLOYMENT_TASK = "fleet.run_deployment"
CHECK_HOST_TASK = "fleet.check_host"

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
LABEL_KEY_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_./-]{0,62}$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CONTAINER_ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
MIN_MEMORY = units.MINIMUM_MEMORY
# What `docker run --cpus` takes.
MIN_CPUS, MAX_CPUS = 0.01, 1024
# What registries answer to missing or wrong credentials, as the engine passes it on.
REFUSED_RE = re.compile(r"unauthorized|authentication required|denied", re.IGNORECASE)


# -- hosts --------------------------------------------------------------------------------------------------

def clean_url(url: str) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme == "unix":
        if not parts.path.startswith("/") or parts.netloc:
            raise ValidationError({"url": "A socket URL is unix:///absolute/path/docker.sock."})
        return url
    if parts.scheme == "tcp":
        try:
            port = parts.port
        except ValueError:
            raise ValidationError({"url": "The port of a tcp:// URL is a number from 1 to 65535."}) from None
        if not parts.hostname or parts.path not in ("", "/") or parts.username:
            raise ValidationError({"url": "A tcp:// URL is tcp://host:port, like tcp://10.0.0.5:2376."})
        if port is None:
            raise ValidationError({"url": "Give the engine's port, like tcp://10.0.0.5:2376."})
        return url.rstrip("/")
    if parts.scheme == "ssh":
        try:
            parts.port  # noqa: B018 (a malformed port raises here)
        except ValueError:
            raise ValidationError({"url": "The port of an ssh:// URL is a number from 1 to 65535."}) from None
        if not parts.hostname or not parts.username:
            raise ValidationError({"url": "An ssh:// URL names the user and the host: ssh://user@host."})
        if parts.password is not None or parts.path not in ("", "/") or parts.query or parts.fragment:
            # A password in the URL would be stored, shown and audited in clear: ssh hosts log in with a key.
            raise ValidationError({"url": "An ssh:// URL is ssh://user@host[:port], without a password: give the "
                                          "private key in ssh_private_key."})
        return url.rstrip("/")
    raise ValidationError({"url": "Use unix:///path, tcp://host:port or ssh://user@host."})


def _check_pem(field: str, text: str, kind: str) -> None:
    try:
        if kind == "key":
            serialization.load_pem_private_key(text.encode(), password=None)
        else:
            x509.load_pem_x509_certificate(text.encode())
    except (ValueError, TypeError):
        what = "an unencrypted PEM private key" if kind == "key" else "a PEM certificate"
        raise ValidationError({field: f"This is not {what}."}) from None


TLS_FIELDS = {"tls_ca_cert": "cert", "tls_client_cert": "cert", "tls_client_key": "key"}


def clean_labels(value: Any) -> dict[str, str]:
    """Labels from a dict (API) or "env=prod, region=eu" text (form)."""
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = parse_selector(value)
        except ValidationError:
            raise ValidationError({"labels": "Write labels as key=value, separated by commas."}) from None
    if not isinstance(value, dict):
        raise ValidationError({"labels": 'Labels are an object like {"env": "prod"}.'})
    labels = {}
    for key, item in value.items():
        if not LABEL_KEY_RE.match(str(key)) or not isinstance(item, str | int) or len(str(item)) > 200:
            raise ValidationError({"labels": f"Label {key!r}: keys are letters, digits and ._-/; values short text."})
        labels[str(key)] = str(item)
    return labels


def parse_selector(text: str) -> dict[str, str]:
    """ "env=prod,region=eu" -> {"env": "prod", "region": "eu"}; every host must carry all of them."""
    selector = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not LABEL_KEY_RE.match(key.strip()) or not value.strip():
            raise ValidationError({"selector": f"{part!r} is not key=value."})
        selector[key.strip()] = value.strip()
    return selector


def _clean_host(owner, data: dict[str, Any], instance: Host | None = None) -> dict[str, Any]:
    """Validate what a user sent for a host (all of it for a new one, some for an update)."""
    clean: dict[str, Any] = {}
    if "name" in data or instance is None:
        name = (data.get("name") or "").strip()
        if not name:
            raise ValidationError({"name": "Give the host a name."})
        others = Host.objects.for_user(owner).filter(name=name)
        if instance is not None:
            others = others.exclude(pk=instance.pk)
        if others.exists():
            raise ValidationError({"name": f"You already have a host named {name!r}."})
        clean["name"] = name
    if "url" in data or instance is None:
        clean["url"] = clean_url(data.get("url", ""))
    if "labels" in data:
        clean["labels"] = clean_labels(data["labels"])
    if "address" in data:
        address = (data.get("address") or "").strip()
        if address and not re.match(r"^[A-Za-z0-9.:\-\[\]]+$", address):
            raise ValidationError({"address": "Give a host name or an IP address."})
        clean["address_override"] = address
    for field, kind in TLS_FIELDS.items():
        if field in data:
            text = (data.get(field) or "").strip()
            if text:
                _check_pem(field, text, kind)
                text += "\n"
            clean[field] = text
    if "ssh_private_key" in data:
        text = (data.get("ssh_private_key") or "").strip()
        if text:
            try:
                load_ssh_private_key(text + "\n")
            except ValueError:
                raise ValidationError({"ssh_private_key": "This is not an unencrypted ed25519, ECDSA or RSA private "
                                                          "key (OpenSSH or PEM text)."}) from None
            text += "\n"
        clean["ssh_private_key"] = text
    if "ssh_host_key" in data:
        text = (data.get("ssh_host_key") or "").strip()
        if text:
            try:
                text = ssh_host_key_line(parse_ssh_host_key(text))
            except ValueError:
                raise ValidationError({"ssh_host_key": "Give the server's public host key as one line, like "
                                                       "'ssh-ed25519 AAAA...' (ssh-keyscan prints it)."}) from None
        clean["ssh_host_key"] = text
    tls = {field: clean.get(field, getattr(instance, field, "") if instance else "") for field in TLS_FIELDS}
    url = clean.get("url", instance.url if instance else "")
    if instance is not None and "url" in clean and clean["url"] != instance.url and "ssh_host_key" not in clean:
        # Another address may be another server: the host key recorded for the old one does not carry over.
        clean["ssh_host_key"] = ""
    if url.startswith("ssh://"):
        if not clean.get("ssh_private_key", instance.ssh_private_key if instance else ""):
            # Without its own key, a host would log in with whatever identity the console's machine has.
            raise ValidationError({"ssh_private_key": "An ssh:// host needs the private key the console logs in "
                                                      "with."})
    elif clean.get("ssh_private_key") or clean.get("ssh_host_key"):
        raise ValidationError({"url": "ssh keys are only used with an ssh:// URL."})
    if "url" in clean:
        # Last, once the rest is known to be well formed: a URL that reaches the console's own machine (its
        # engine socket, loopback, its own addresses, its services) is for staff (console/netpolicy.py).
        try:
            netpolicy.check_url(clean["url"], user=owner, purpose=netpolicy.HOST)
        except netpolicy.DestinationRefused as exc:
            raise ValidationError({"url": str(exc)}) from None
    if any(tls.values()):
        if not all(tls.values()):
            raise ValidationError({"tls_ca_cert": "TLS needs all three: the CA certificate, the client certificate "
                                                  "and the client key."})
        if not url.startswith("tcp://"):
            raise ValidationError({"url": "TLS material is only used with a tcp:// URL."})
    return clean


def _host_detail(host: Host) -> dict[str, Any]:
    # Whether TLS or an ssh key is used, never the material: the keys are secrets, and certificates are not for
    # the log. (A URL holds no secret: clean_url refuses passwords in it.)
    detail = {"url": host.url, "labels": host.labels, "tls": bool(host.tls_client_key)}
    if host.uses_ssh:
        detail["ssh_key"] = bool(host.ssh_private_key)
    return detail


@transaction.atomic
def create_host(owner, data: dict[str, Any]) -> Host:
    host = Host.objects.create(owner=owner, **_clean_host(owner, data))
    record(owner, Action.HOST_CREATED, target=host, detail=_host_detail(host))
    _enqueue_check(host)
    return host


@transaction.atomic
def update_host(host: Host, data: dict[str, Any]) -> Host:
    clean = _clean_host(host.owner, data, instance=host)
    for field, value in clean.items():
        setattr(host, field, value)
    host.save()
    # Which fields changed, never their values (TLS keys are secrets).
    fields = sorted("address" if field == "address_override" else field for field in clean)
    record(host.owner, Action.HOST_UPDATED, target=host, detail={"fields": fields, **_host_detail(host)})
    if {"url", "ssh_private_key", "ssh_host_key", *TLS_FIELDS} & set(clean):
        _enqueue_check(host)
    return host


def delete_host(host: Host) -> None:
    with transaction.atomic():
        record(host.owner, Action.HOST_DELETED, target=host, detail={"url": host.url})
        host.delete()


def _enqueue_check(host: Host) -> None:
    # A host check is no job (it has no row of its own to hold a task id): sent by name once the host is saved.
    transaction.on_commit(lambda: jobs.send(CHECK_HOST_TASK, host.pk))


def check_host(host: Host) -> Host:
    """Ask the engine for its facts: `up` with them (and the engine's ID), or `down` with the reason it did not
    answer, in the engine wrapper's fixed words (a refused URL, refused, timed out, TLS, not an engine...): never
    what a service that is not an engine sent back."""
    now = timezone.now()
    try:
        with host.engine(timeout=CHECK_TIMEOUT_SECONDS) as engine:
            info = engine.info()
    except EngineError as exc:
        host.status, host.status_reason, host.last_checked = HostStatus.DOWN, str(exc), now
        Host.objects.filter(pk=host.pk).update(status=host.status, status_reason=host.status_reason, last_checked=now)
        return host
    engine_id = info.pop("id", "")
    host.status, host.status_reason, host.info, host.last_seen, host.last_checked = HostStatus.UP, "", info, now, now
    host.engine_id = engine_id
    Host.objects.filter(pk=host.pk).update(status=HostStatus.UP, status_reason="", info=info, last_seen=now,
                                           last_checked=now, engine_id=engine_id)
    return host


def check_all_hosts() -> dict[str, int]:
    """The periodic check of every host; hosts are checked at once so that a silent one delays none."""
    # The owner comes along: each check asks the network policy about the owner, from its own thread.
    hosts = list(Host.objects.select_related("owner"))

    def check(host: Host) -> str:
        try:
            return check_host(host).status
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_TARGETS, max(1, len(hosts)))) as pool:
        statuses = list(pool.map(check, hosts))
    return {status: statuses.count(status) for status in set(statuses)}


# -- containers ------------------------------------------------------------------------------------------

def _container_id(container_id: str) -> str:
    if not CONTAINER_ID_RE.match(container_id or ""):
        raise ValidationError({"container": "Name a container by its id or name."})
    return container_id


def engine_address(url: str) -> str:
    """A host URL reduced to the engine it names: scheme, lower-case host, port (the default filled in); the
    user of an ssh:// URL does not count (two logins to one machine reach its one engine)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{posixpath.normpath(parts.path)}"
    try:
        port = parts.port
    except ValueError:
        port = None
    default = 22 if parts.scheme == "ssh" else None
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port or default}"


def engine_is_shared(host: Host, engine_id: str = "") -> bool:
    """Whether another user has a host on the same engine as `host`: the same engine ID (the one `host` answers
    with now, or the one recorded at its last check), or the same engine address."""
    others = Host.objects.exclude(owner_id=host.owner_id)
    ids = {value for value in (engine_id, host.engine_id) if value}
    if ids and others.filter(engine_id__in=ids).exists():
        return True
    address = engine_address(host.url)
    hostname = urlsplit(host.url).hostname or ""
    candidates = others.filter(url__icontains=hostname) if hostname else others.filter(url__startswith="unix:")
    return any(engine_address(url) == address for url in candidates.values_list("url", flat=True))


@dataclass
class ContainerScope:
    """Which containers on one host a user may see and act on: all of them when the host is the user's and its
    engine is theirs alone, else only those the console deployed for that user."""

    user_id: int
    everything: bool
    # Deployment ids of the user's, for containers deployed before the owner label existed.
    legacy_deployments: set[str]

    def allows(self, container: dict[str, Any]) -> bool:
        if self.everything:
            return True
        labels = container.get("labels") or {}
        if labels.get(LABEL_MANAGED) != "true":
            return False
        if LABEL_OWNER in labels:
            return labels[LABEL_OWNER] == str(self.user_id)
        return labels.get(LABEL_DEPLOYMENT, "") in self.legacy_deployments


def _scope(host: Host, user, engine: Engine, containers: list[dict[str, Any]]) -> ContainerScope:
    """The one access decision for containers on a host (see ContainerScope), asked with the engine open: its ID is
    read now, so that a host registered under another address but reaching another user's engine counts as shared
    even before its first check."""
    if host.owner_id != getattr(user, "pk", None):
        return ContainerScope(user_id=-1, everything=False, legacy_deployments=set())
    engine_id = engine.engine_id()
    if engine_id and engine_id != host.engine_id:
        Host.objects.filter(pk=host.pk).update(engine_id=engine_id)
        host.engine_id = engine_id
    everything = not engine_is_shared(host, engine_id)
    legacy: set[str] = set()
    if not everything:
        wanted = {c["labels"].get(LABEL_DEPLOYMENT, "") for c in containers
                  if LABEL_OWNER not in c["labels"] and c["labels"].get(LABEL_MANAGED) == "true"}
        wanted = {int(value) for value in wanted if value.isdigit()}
        if wanted:
            legacy = {str(pk) for pk in Deployment.objects.filter(owner=user, pk__in=wanted)
                      .values_list("pk", flat=True)}
    return ContainerScope(user_id=user.pk, everything=everything, legacy_deployments=legacy)


def _not_yours(host: Host, container_id: str) -> EngineNotFound:
    # The same words for a container that does not exist and one of another user's: nothing confirms it exists.
    return EngineNotFound(f"There is no container {container_id!r} on {host.name} that you may use.")


def container_for_user(host: Host, user, engine: Engine, container_id: str) -> dict[str, Any]:
    """The container `container_id` (id, prefix or name) on `host` if `user` may see and act on it; EngineNotFound
    (404) otherwise, whether it is missing or another user's. Every container action goes through here."""
    container_id = _container_id(container_id)
    try:
        container = engine_containers.get_container(engine, container_id)
    except EngineNotFound:
        raise _not_yours(host, container_id) from None
    if not _scope(host, user, engine, [container]).allows(container):
        raise _not_yours(host, container_id)
    return container


def list_containers(host: Host, user) -> list[dict[str, Any]]:
    """The containers on `host` that `user` may see (see ContainerScope)."""
    with host.engine() as engine:
        containers = engine_containers.list_containers(engine)
        scope = _scope(host, user, engine, containers)
    return [container for container in containers if scope.allows(container)]


def get_container(host: Host, user, container_id: str) -> dict[str, Any]:
    with host.engine() as engine:
        return container_for_user(host, user, engine, container_id)


def container_action(host: Host, user, container_id: str, action: str) -> dict[str, Any] | None:
    """Start, stop, restart or remove one container; the container afterwards (None once removed)."""
    if action not in engine_containers.CONTAINER_ACTIONS:
        raise ValidationError({"action": f"Actions are {', '.join(engine_containers.CONTAINER_ACTIONS)}."})
    with host.engine() as engine:
        container = container_for_user(host, user, engine, container_id)
        engine_containers.act_on_container(engine, container["id"], action)
        if action == "remove":
            return None
        return engine_containers.get_container(engine, container["id"])


def clean_tail(value: Any, default: int = 200) -> int:
    if value in (None, ""):
        return default
    try:
        tail = int(value)
    except (TypeError, ValueError):
        raise ValidationError({"tail": "tail is a whole number of lines."}) from None
    if not 1 <= tail <= MAX_LOG_TAIL:
        raise ValidationError({"tail": f"tail is between 1 and {MAX_LOG_TAIL}."})
    return tail


def container_logs(host: Host, user, container_id: str, tail: int) -> str:
    with host.engine() as engine:
        container = container_for_user(host, user, engine, container_id)
        return engine_containers.container_logs(engine, container["id"], tail=tail)


# -- deployments: what the user asks for ---------------------------------------------------------------------

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
    try:
        granted = access.grant(owner, image)
    except access.ImageAccessError as exc:
        raise ValidationError({"image": str(exc)}) from None
    with granted.engine() as engine:
        image_id = granted.engine_id(engine)
    if not image_id:
        raise ValidationError(
            {"image": f"The build engine no longer has the image {image!r}: build it again, or choose the "
                      "registry to pull it from."}
        )
    if image.isdigit() and granted.record is not None:
        # A record number: the deployment shows the image by the owner's name for it (or its id).
        image = granted.record.tags[0] if granted.record.tags else image_id
    return image, image_id


def create_deployment(owner, data: dict[str, Any], rollback_of: Deployment | None = None) -> Deployment:
    """Validate a deployment, make its row and one target per host, and queue it. Raises ValidationError."""
    name = (data.get("name") or "").strip()
    if not NAME_RE.match(name):
        raise ValidationError({"name": "Name the app with letters, digits and ._- (at most 63)."})
    account = _registry_account(owner, data.get("registry"))
    hosts = select_hosts(owner, data.get("hosts") or [], (data.get("selector") or "").strip())
    ports = clean_ports(data.get("ports"))
    env = clean_env(data.get("env"))
    restart_policy = data.get("restart_policy") or RestartPolicy.NO
    if restart_policy not in RestartPolicy.values:
        raise ValidationError({"restart_policy": f"Choose one of {', '.join(RestartPolicy.values)}."})
    memory_limit = clean_memory(data.get("memory_limit"))
    cpus = clean_cpus(data.get("cpus"))
    user = (data.get("user") or "").strip()
    if len(user) > 100 or any(char.isspace() for char in user):
        raise ValidationError({"user": "A user is a name or uid[:gid], without spaces."})
    image, image_id = resolve_image(owner, data.get("image", ""), pulled=account is not None)
    with transaction.atomic():
        busy = Deployment.objects.select_for_update().filter(owner=owner, name=name, status__in=ACTIVE_STATUSES)
        if busy.exists():
            raise ValidationError({"name": f"{name} is being deployed right now (#{busy.first().pk}); wait for it."})
        deployment = Deployment.objects.create(
            owner=owner, name=name, image=image, image_id=image_id,
            image_digest=data.get("image_digest", "") if rollback_of else "",
            registry_account_id=account.pk if account else None, selector=(data.get("selector") or "").strip(),
            ports=ports, env=env, restart_policy=restart_policy, memory_limit=memory_limit, cpus=cpus, user=user,
            rollback_of=rollback_of,
        )
        DeploymentTarget.objects.bulk_create(
            DeploymentTarget(deployment=deployment, host=host, host_name=host.name) for host in hosts
        )
        # The environment stays out of the event: its values may be passwords.
        detail = {"name": name, "image": image, "image_id": image_id, "hosts": [host.name for host in hosts],
                  "selector": deployment.selector, "registry": account.name if account else None}
        if rollback_of is None:
            record(owner, Action.DEPLOY_STARTED, target=deployment, detail=detail)
        else:
            record(owner, Action.ROLLBACK, target=deployment, detail={**detail, "release": rollback_of.pk})
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
                                         f"#{deployment.pk} to roll back to."})
    image = release.image_digest or release.image_id or release.image
    hosts = [target.host_id for target in release.targets.all() if target.host_id]
    if not hosts:
        raise ValidationError({"detail": f"The hosts of release #{release.pk} are gone."})
    data = {
        "name": release.name, "image": image, "image_digest": release.image_digest, "hosts": hosts,
        "ports": release.ports, "env": release.env, "restart_policy": release.restart_policy,
        "memory_limit": release.memory_limit, "cpus": release.cpus, "user": release.user,
        "registry": release.registry_account_id if release.image_digest else None,
    }
    return create_deployment(deployment.owner, data, rollback_of=release)


# -- deployments: the run ------------------------------------------------------------------------------------

class TargetFailed(Exception):
    """A target could not be deployed; the message says why, for the user."""


class DeploymentRunner(jobs.JobRunner):
    """A deployment as a job: every target at once, each in its own thread; the deployment fails when one does."""

    model = Deployment

    def work(self, deployment: Deployment) -> tuple[str, str]:
        targets = list(deployment.targets.values_list("pk", flat=True))
        jobs.append_log(deployment, [f"Deploying {deployment.image} as {deployment.name} to {len(targets)} host(s)"])
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_TARGETS, max(1, len(targets)))) as pool:
            futures = [pool.submit(_run_target_in_thread, deployment.pk, pk) for pk in targets]
            # A heartbeat while targets run (a pull can be silent for minutes): the reaper tells a slow deployment
            # from one whose worker died.
            while wait(futures, timeout=DEPLOY_HEARTBEAT_SECONDS).not_done:
                jobs.heartbeat(deployment)
            for future in futures:
                future.result()
        finished = list(deployment.targets.all())
        failed = [target for target in finished if target.status != JobStatus.SUCCEEDED]
        if failed:
            summary = "; ".join(f"{target.host_name}: {target.error}" for target in failed)
            return JobStatus.FAILED, f"{len(failed)} of {len(finished)} host(s) failed: {summary}"
        return JobStatus.SUCCEEDED, ""

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
    """Deploy to one host; a failure ends this target only, with the reason in its `error`."""

    def say(line: str) -> None:
        jobs.append_log(deployment, [f"[{target.host_name}] {line}"])

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
            say(STOPPING_FOR_PORTS.format(names=names))
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
