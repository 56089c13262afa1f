"""Hosts: what a user may register (engine URL, TLS material, ssh keys, labels), creating, changing, removing
and checking them, and which engine a host reaches (its identity, shared with another user or not)."""

from __future__ import annotations

import posixpath
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.db.models import Max
from django.utils import timezone

from console import jobs, netpolicy
from console.audit.constants import Action
from console.audit.services import record
from console.constants import JobStatus
from console.engine import (
    EngineError,
    EngineNotFound,
    load_ssh_private_key,
    parse_ssh_host_key,
    ssh_fingerprint,
    ssh_host_key_line,
)
from console.engine.swarm import SwarmView, read_swarm, service_state
from console.errors import check_name_free
from fleet.constants import CHECK_TIMEOUT_SECONDS, MAX_PARALLEL_TARGETS, MAX_SERVICES_PER_CHECK, HostStatus
from fleet.models import Deployment, DeploymentTarget, Host
from fleet.services.timeline import remember_states

# The task a worker checks a host with (fleet/tasks.py), sent by name.
CHECK_HOST_TASK = "fleet.check_host"

LABEL_KEY_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_./-]{0,62}$")


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


def ssh_host_key_fingerprint(text: str) -> str:
    """The SHA256 fingerprint of a recorded ssh host key line, as `ssh-keygen -l` prints it; "" when there is no
    key (or one that does not parse)."""
    if not text:
        return ""
    try:
        return ssh_fingerprint(parse_ssh_host_key(text))
    except ValueError:
        return ""


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
        check_name_free(Host.objects.for_user(owner), name, instance, noun="a host")
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
            try:
                view = read_swarm(engine)
            except EngineError as exc:
                # The engine answers, its swarm does not (a manager that lost its quorum, demoted meanwhile): the
                # host is up, its swarm unknown for now, and the reason says why.
                view = SwarmView(None, str(exc))
            if view.swarm is not None:
                _record_services(host, engine)
    except EngineError as exc:
        # Down: only the status changes; the facts (swarm nodes included) stay those of the last good check.
        host.status, host.status_reason, host.last_checked = HostStatus.DOWN, str(exc), now
        Host.objects.filter(pk=host.pk).update(status=host.status, status_reason=host.status_reason, last_checked=now)
        return host
    engine_id = info.pop("id", "")
    facts = {"status": HostStatus.UP, "status_reason": "", "info": info, "last_seen": now, "last_checked": now,
             "engine_id": engine_id, "swarm": view.swarm, "swarm_reason": view.reason[:300]}
    for field, value in facts.items():
        setattr(host, field, value)
    Host.objects.filter(pk=host.pk).update(**facts)
    return host


def _record_services(host: Host, engine) -> None:
    """Read again the service of each app's latest successful release on this swarm into that release's target:
    Swarm moves tasks by itself (a drained or lost node, a restart) long after the deployment ended, and the
    target should show where they run now. A service that is gone is marked removed; one that cannot be read now
    keeps its last reading (the check of the host itself is what says whether the manager answers)."""
    latest = (Deployment.objects.filter(status=JobStatus.SUCCEEDED, swarm__isnull=False, targets__host=host)
              .values("owner_id", "name").annotate(latest=Max("pk")).order_by("-latest")[:MAX_SERVICES_PER_CHECK])
    targets = DeploymentTarget.objects.filter(host=host, deployment_id__in=[row["latest"] for row in latest],
                                              service__isnull=False)
    for target in targets:
        service_id = (target.service or {}).get("id")
        if not isinstance(service_id, str) or not service_id or target.service.get("removed"):
            continue
        try:
            # The timeline's task histories carry on (fleet/services/timeline.py).
            state = remember_states(target.service, service_state(engine, service_id))
        except EngineNotFound:
            state = {**target.service, "removed": True}
        except EngineError:
            continue
        DeploymentTarget.objects.filter(pk=target.pk).update(service=state)


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
