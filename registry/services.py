"""Registry accounts, their checks and browsing, pushes and pulls: one function per act, for the browser and the
API alike. Secrets go to the registry (requests' Basic auth) and to the engine (the SDK's auth_config) only."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import socket
import time
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from builds import access
from builds.constants import ImageOrigin
from builds.images import record_image
from console import jobs, netpolicy, references
from console.audit.constants import Action
from console.audit.services import record
from console.constants import JobStatus
from console.crypto import DecryptionError
from console.engine import Engine, EngineError
from console.engine import registry as engine_registry
from console.errors import UpstreamError
from registry import kinds
from registry.client import RegistryClient, RegistryHTTPError, RegistryRefused
from registry.constants import PROGRESS_INTERVAL, USER_KINDS, RegistryKind
from registry.models import PublicRepository, Pull, Push, RegistryAccount
from registry.tokens import Scope, SigningMaterialMissing, issue_token, namespace_of, parse_scopes

log = logging.getLogger(__name__)

# The tasks a worker moves images with (registry/tasks.py), sent by name.
RUN_PUSH_TASK = "registry.run_push"
RUN_PULL_TASK = "registry.run_pull"

LAYER_ID_RE = re.compile(r"^[0-9a-f]{12}$")
CATALOG_PAGE = 100
CATALOG_LIMIT = 5000
NO_CATALOG = (
    "This registry does not offer a catalog of its repositories (Docker Hub, Quay, GCR and GHCR keep theirs "
    "closed): open a repository by its name instead."
)


class RegistryError(UpstreamError):
    """A registry act that cannot be done; the message is fit to show the user."""


# -- accounts --------------------------------------------------------------------------------------------------


def ensure_console_account(user) -> RegistryAccount:
    """The account of the console's own registry that every user has; made the first time it is needed."""
    account, _ = RegistryAccount.objects.get_or_create(
        owner=user,
        kind=RegistryKind.CONSOLE,
        defaults={"name": "console", "url": settings.REGISTRY_ADDRESS, "username": user.get_username()},
    )
    return account


def accounts_for(user):
    """The user's accounts, the console's own registry among them."""
    if not RegistryAccount.objects.filter(owner=user, kind=RegistryKind.CONSOLE).exists():
        try:
            with transaction.atomic():
                ensure_console_account(user)
        except IntegrityError:
            # The user already named an account "console": keep theirs, name the console's after the address.
            RegistryAccount.objects.get_or_create(
                owner=user,
                kind=RegistryKind.CONSOLE,
                defaults={"name": settings.REGISTRY_ADDRESS, "url": settings.REGISTRY_ADDRESS,
                          "username": user.get_username()},
            )
    # The account's username follows the user's (the registry's namespace is the user's name).
    RegistryAccount.objects.filter(owner=user, kind=RegistryKind.CONSOLE).exclude(
        username=user.get_username()
    ).update(username=user.get_username())
    return RegistryAccount.objects.for_user(user)


def _clean_account(owner, data: dict[str, Any], instance: RegistryAccount | None = None) -> dict[str, Any]:
    kind = data.get("kind", instance.kind if instance else "")
    if kind not in USER_KINDS:
        raise ValidationError({"kind": f"Choose one of: {', '.join(USER_KINDS)}."})
    name = (data.get("name", instance.name if instance else "") or "").strip()
    if not name:
        raise ValidationError({"name": "Give the account a name."})
    taken = RegistryAccount.objects.for_user(owner).filter(name=name)
    if instance is not None:
        taken = taken.exclude(pk=instance.pk)
    if taken.exists():
        raise ValidationError({"name": f"You already have a registry account named {name!r}."})
    url = data.get("url", instance.url if instance else "")
    username = data.get("username", instance.username if instance else "")
    url, username = kinds.normalise(kind, url, username)
    if kind == RegistryKind.GENERIC:
        _check_registry_url(owner, url)
    ca_certificate = (data.get("ca_certificate", instance.ca_certificate if instance else "") or "").strip()
    if kind != RegistryKind.GENERIC and "ca_certificate" not in data:
        # A kind changed away from generic drops the CA it no longer uses.
        ca_certificate = ""
    if ca_certificate:
        if kind != RegistryKind.GENERIC:
            raise ValidationError({"ca_certificate": "Only a generic registry takes a CA certificate."})
        try:
            x509.load_pem_x509_certificates(ca_certificate.encode())
        except ValueError:
            raise ValidationError({"ca_certificate": "This is not a PEM certificate."}) from None
    return {"name": name, "kind": kind, "url": url, "username": username, "ca_certificate": ca_certificate}


def _check_registry_url(owner, url: str) -> None:
    """A generic registry's URL must not reach the console's own machine (for users who are not staff).

    A name that does not resolve now is taken (it may be a registry not set up yet): every request to it is
    checked again before it is sent."""
    reason = netpolicy.refused_reason(url, user=owner, purpose=netpolicy.REGISTRY)
    if reason and not _unresolvable(url):
        raise ValidationError({"url": reason})


def _unresolvable(url: str) -> bool:
    host = (urlsplit(url).hostname or "").strip("[]")
    try:
        socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return True
    return False


@transaction.atomic
def create_account(owner, data: dict[str, Any]) -> RegistryAccount:
    """A new account from `name, kind, url, username, secret, ca_certificate`; ValidationError names bad fields."""
    fields = _clean_account(owner, data)
    account = RegistryAccount.objects.create(owner=owner, secret=data.get("secret") or "", **fields)
    record(owner, Action.REGISTRY_CREATED, target=account, detail={"kind": account.kind, "url": account.url})
    return account


@transaction.atomic
def update_account(account: RegistryAccount, data: dict[str, Any]) -> RegistryAccount:
    """Change some fields; an absent or empty `secret` keeps the stored one (it is never shown to edit)."""
    if account.is_console:
        raise ValidationError({"detail": "The console's registry account is managed by the console."})
    fields = _clean_account(account.owner, data, account)
    for name, value in fields.items():
        setattr(account, name, value)
    if data.get("secret"):
        account.secret = data["secret"]
    account.save()
    # Which fields were sent, never their values: the secret's is not for the log.
    record(account.owner, Action.REGISTRY_UPDATED, target=account,
           detail={"fields": sorted(name for name in data if name in {*fields, "secret"})})
    return account


def delete_account(account: RegistryAccount) -> None:
    if account.is_console:
        raise ValidationError({"detail": "The console's registry account is always present; it cannot be deleted."})
    with transaction.atomic():
        record(account.owner, Action.REGISTRY_DELETED, target=account, detail={"kind": account.kind})
        account.delete()


def _console_token_source(user):
    """For the console's own registry, the console signs the token itself instead of asking its realm."""

    def source(params: dict[str, str]) -> str:
        scopes = parse_scopes([params.get("scope", "")])
        return issue_token(user, params.get("service", settings.REGISTRY_SERVICE), scopes, internal=True)["token"]

    return source


def client_for(account: RegistryAccount) -> RegistryClient:
    """A client for the account's registry; every request it makes is checked against the network policy for the
    account's owner, except for the console's own registry (reached with a token the console signs)."""
    endpoint = account.endpoint
    if account.is_console:
        return RegistryClient(endpoint.api_url, token_source=_console_token_source(account.owner), trusted=True)
    return RegistryClient(
        endpoint.api_url, account.username, account.secret, account.ca_certificate, user=account.owner
    )


def destination_refusal(account: RegistryAccount) -> str:
    """Why the console will not connect to this account's registry for its owner ("" when it may).

    A name that does not resolve is no refusal here: nothing can connect to it, and the engine says so."""
    if account.is_console:
        return ""
    url = account.endpoint.api_url
    reason = netpolicy.refused_reason(url, user=account.owner, purpose=netpolicy.REGISTRY)
    return "" if reason and _unresolvable(url) else reason


def check_destination(account: RegistryAccount) -> None:
    """RegistryError unless the account's owner may have the console (or its engine) connect to the registry."""
    reason = destination_refusal(account)
    if reason:
        raise RegistryError(reason)


def check_login(account: RegistryAccount) -> tuple[bool, str]:
    """Log in the way `docker login` does (GET /v2/ answering the registry's challenge): (ok, what happened).

    What happened is one of the client's fixed sentences, never what the other side answered."""
    try:
        client_for(account).ping()
    except RegistryHTTPError as exc:
        return False, str(exc)
    except (DecryptionError, SigningMaterialMissing) as exc:
        return False, str(exc)
    return True, f"Logged in to {account.endpoint.api_url} as {account.username or 'anonymous'}."


# -- browsing --------------------------------------------------------------------------------------------------


def list_repositories(account: RegistryAccount) -> list[str]:
    """The repositories of the registry's catalog (for the console's own: the user's namespace)."""
    client = client_for(account)
    names: list[str] = []
    last = ""
    while len(names) < CATALOG_LIMIT:
        params = {"n": CATALOG_PAGE, **({"last": last} if last else {})}
        try:
            response = client.get("/v2/_catalog", params=params)
            page = response.json().get("repositories") or []
        except RegistryHTTPError as exc:
            if exc.status in (401, 403, 404, 405) and not isinstance(exc, RegistryRefused):
                raise RegistryError(NO_CATALOG) from None
            raise RegistryError(str(exc)) from None
        except (ValueError, AttributeError):
            raise RegistryError(NO_CATALOG) from None
        names.extend(page)
        if len(page) < CATALOG_PAGE or "next" not in response.links:
            break
        last = page[-1]
    if account.is_console:
        prefix = f"{namespace_of(account.owner)}/"
        names = [name for name in names if name.startswith(prefix)]
    return sorted(names)


def list_tags(account: RegistryAccount, repository: str) -> list[str]:
    if not references.is_path(repository):
        raise ValidationError({"repository": f"{repository!r} is not a repository name."})
    try:
        response = client_for(account).get(f"/v2/{repository}/tags/list")
        return sorted(response.json().get("tags") or [])
    except RegistryHTTPError as exc:
        if exc.status == 404 and not isinstance(exc, RegistryRefused):
            raise RegistryError(f"The registry has no repository {repository!r}.") from None
        raise RegistryError(str(exc)) from None
    except (ValueError, AttributeError):
        raise RegistryError("The registry's answer is not a list of tags.") from None


# -- public repositories of the console's registry ----------------------------------------------------------


def make_public(user, repository: str) -> PublicRepository:
    if not repository.startswith(f"{namespace_of(user)}/") or not references.is_path(repository):
        raise ValidationError({"repository": f"Only repositories under {namespace_of(user)}/ are yours to publish."})
    public, created = PublicRepository.objects.get_or_create(name=repository, defaults={"owner": user})
    if created:
        record(user, Action.REGISTRY_REPOSITORY_PUBLIC, target=repository)
    return public


def make_private(user, repository: str) -> None:
    if PublicRepository.objects.for_user(user).filter(name=repository).delete()[0]:
        record(user, Action.REGISTRY_REPOSITORY_PRIVATE, target=repository)


# -- pushes and pulls ------------------------------------------------------------------------------------------


def auth_config_for(account: RegistryAccount, repository: str, actions: set[str]) -> dict[str, str]:
    """What the engine sends the registry: the account's credentials, or for the console's own registry a token
    signed for just this repository. Called right before the engine connects: the registry is checked again."""
    check_destination(account)
    if account.is_console:
        scope = Scope("repository", repository, frozenset(actions))
        return {"registrytoken": issue_token(account.owner, settings.REGISTRY_SERVICE, [scope])["token"]}
    if not account.username and not account.secret:
        return {}
    return {"username": account.username, "password": account.secret, "serveraddress": account.endpoint.auth_server}


def resolve_image(owner, image: str) -> str:
    """The engine id of the image to push: one of the owner's images (by record number, tag, digest or id) or a
    shared base image (builds/access.py decides), present on the engine that holds it."""
    try:
        granted = access.grant(owner, image)
    except access.ImageAccessError as exc:
        raise ValidationError({"image": str(exc)}) from None
    with granted.engine() as engine:
        image_id = granted.engine_id(engine)
    if not image_id:
        raise ValidationError({"image": f"The build engine no longer has the image {image!r}."})
    return image_id


def trigger_push(owner, image: str, registry: RegistryAccount, repository: str, tag: str = "latest") -> Push:
    repository, tag = (repository or "").strip(), (tag or "latest").strip()
    if not references.is_path(repository):
        raise ValidationError({"repository": "Use lowercase letters, digits and . _ - separated by /."})
    if not references.is_tag(tag):
        raise ValidationError({"tag": "A tag is up to 128 letters, digits, _ . and -, not starting with . or -."})
    if registry.is_console and not repository.startswith(f"{namespace_of(owner)}/"):
        raise ValidationError({"repository": f"Push to your own namespace: {namespace_of(owner)}/<name>."})
    refusal = destination_refusal(registry)
    if refusal:
        raise ValidationError({"registry": refusal})
    # The push sends exactly the image that was checked: its id, whatever the name means by the time it runs.
    image_id = resolve_image(owner, image)
    with transaction.atomic():
        push = Push.objects.create(owner=owner, registry=registry, image=image_id, repository=repository, tag=tag)
        record(owner, Action.PUSH_STARTED, target=push,
               detail={"image": image.strip(), "registry": registry.name, "repository": repository, "tag": tag})
        jobs.enqueue_on_commit(push, RUN_PUSH_TASK)
    return push


def split_reference(reference: str) -> tuple[str, str]:
    """`name[:tag][@digest]` into the repository and the tag or digest to pull (default `latest`)."""
    reference = (reference or "").strip()
    name, at, digest = reference.partition("@")
    name, tag = references.split(name)
    if at:
        if not references.is_sha256_digest(digest):
            raise ValidationError({"reference": "A digest is sha256: and 64 hexadecimal digits."})
        tag = digest
    elif not references.is_tag(tag):
        raise ValidationError({"reference": f"{tag!r} is not a tag."})
    # The tag added to a bare name can take a reference past what the row holds: say so before the grammar does.
    if len(name) + 1 + len(tag) > Pull._meta.get_field("reference").max_length:
        raise ValidationError({"reference": "The reference is too long."})
    if not references.is_path(name):
        raise ValidationError({"reference": "Name a repository within the registry, such as team/app:1.0."})
    return name, tag


def trigger_pull(owner, registry: RegistryAccount, reference: str) -> Pull:
    name, tag = split_reference(reference)
    if destination_refusal(registry):
        raise ValidationError({"registry": destination_refusal(registry)})
    reference = f"{name}@{tag}" if tag.startswith("sha256:") else f"{name}:{tag}"
    # The tag added to a bare name can take a reference past what the row holds.
    if len(reference) > Pull._meta.get_field("reference").max_length:
        raise ValidationError({"reference": "The reference is too long."})
    if access.is_shared_reference(registry.endpoint.reference(name) + (f"@{tag}" if tag.startswith("sha256:")
                                                                       else f":{tag}")):
        # Pulling it would move a shared base image's plain name to whatever that registry serves.
        raise ValidationError({"reference": f"{reference} is the name of a shared base image of this console: "
                                            "pull it under another name."})
    with transaction.atomic():
        pull = Pull.objects.create(owner=owner, registry=registry, reference=reference)
        record(owner, Action.PULL_STARTED, target=pull, detail={"registry": registry.name, "reference": reference})
        jobs.enqueue_on_commit(pull, RUN_PULL_TASK)
    return pull


class Progress:
    """Per-layer progress from the engine's JSON lines; written to the job row at most every PROGRESS_INTERVAL
    seconds, with the log lines that are not mere progress."""

    def __init__(self, job) -> None:
        self.job = job
        self.layers: dict[str, dict[str, Any]] = {}
        self.pending_log: list[str] = []
        self.digest = ""
        self._written = 0.0

    def feed(self, line: dict[str, Any]) -> None:
        status, layer_id = str(line.get("status") or ""), str(line.get("id") or "")
        aux = line.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            self.digest = str(aux["Digest"])
        if status.startswith("Digest: "):
            self.digest = status.removeprefix("Digest: ").strip()
        detail = line.get("progressDetail") or {}
        if LAYER_ID_RE.match(layer_id):
            layer = self.layers.setdefault(layer_id, {"id": layer_id, "status": "", "current": 0, "total": 0})
            layer["status"] = status
            if detail.get("total"):
                layer["total"] = int(detail["total"])
            if detail.get("current") is not None:
                layer["current"] = int(detail["current"])
            if status in ("Pushed", "Layer already exists", "Pull complete", "Already exists",
                          "Download complete") or status.startswith("Mounted from"):
                layer["current"] = layer["total"]
            if detail:
                return
            self.pending_log.append(f"{layer_id}: {status}")
        elif status:
            self.pending_log.append(f"{layer_id}: {status}" if layer_id else status)

    def flush(self, force: bool = False) -> bool:
        """Write what changed; False when the user asked to cancel meanwhile."""
        now = time.monotonic()
        if not force and now - self._written < PROGRESS_INTERVAL:
            return True
        self._written = now
        # Each write is the job's heartbeat too: the reaper (reap_lost_transfers) fails a job whose worker died.
        type(self.job).objects.filter(pk=self.job.pk).update(layers=list(self.layers.values()), digest=self.digest,
                                                            heartbeat_at=timezone.now())
        lines, self.pending_log = self.pending_log, []
        jobs.append_log(self.job, lines)
        return force or not jobs.cancel_requested(self.job)


class TransferRunner(jobs.JobRunner):
    """A push or a pull as a job: the engine's lines feed the progress, which is the job's heartbeat and asks
    whether the user cancelled; `lines(engine, job, progress)` is the kind's part."""

    related = ("registry", "owner")

    def __init__(self, model: type[Push] | type[Pull], lines) -> None:
        self.model, self.lines = model, lines
        self.progress: Progress | None = None

    def load(self, job_id: int):
        job = super().load(job_id)
        if job is not None:
            self.progress = Progress(job)
        return job

    def work(self, job) -> tuple[str, str]:
        try:
            with Engine.for_builds() as engine:
                for line in self.lines(engine, job, self.progress):
                    self.progress.feed(line)
                    if not self.progress.flush():
                        return JobStatus.CANCELLED, ""
        except (EngineError, RegistryError, DecryptionError, SigningMaterialMissing) as exc:
            return JobStatus.FAILED, str(exc)
        return JobStatus.SUCCEEDED, ""

    def log(self, job, lines: list[str]) -> None:
        # In order with the progress's own lines, written with its next flush.
        self.progress.pending_log.extend(lines)

    def conclude(self, job, status: str, error: str) -> None:
        super().conclude(job, status, error)
        self.progress.flush(force=True)


def _push_lines(engine: Engine, push: Push, progress: Progress):
    endpoint = push.registry.endpoint
    target_repository = endpoint.reference(push.repository)
    target = f"{target_repository}:{push.tag}"
    progress.pending_log.append(f"Pushing {push.image} as {target}")
    # The engine pushes by name, and the name is the registry's, the same for every user of this engine: while
    # it names this push's image, no other push may move it (another user's push to the same name would otherwise
    # send this user's credentials with that user's image, or the other way round).
    with exclusive_name(engine, target):
        tagged_here = not engine.image_exists(target)
        engine.tag_image(push.image, target_repository, push.tag)
        auth_config = auth_config_for(push.registry, push.repository, {"pull", "push"})
        try:
            yield from engine_registry.push(engine, target_repository, push.tag, auth_config)
        finally:
            if tagged_here:
                # The name was only made to push with: leave the build engine's names as they were.
                try:
                    engine_registry.remove_tag(engine, target)
                except EngineError:
                    log.warning("Push #%s: could not remove the temporary tag %s", push.pk, target)


PUSH_NAME_LOCK_SECONDS = 3600
PUSH_NAME_WAIT_SECONDS = 600


@contextlib.contextmanager
def exclusive_name(engine: Engine, name: str):
    """Hold an engine's name for one push at a time, across processes (the cache is Redis or the database)."""
    key = "push-name:" + hashlib.sha256(f"{engine.url}|{name}".encode()).hexdigest()
    token = uuid.uuid4().hex
    deadline = time.monotonic() + PUSH_NAME_WAIT_SECONDS
    while not cache.add(key, token, PUSH_NAME_LOCK_SECONDS):
        if time.monotonic() > deadline:
            raise RegistryError(f"Another push to {name} has held it for too long; try again later.")
        time.sleep(0.5)
    try:
        yield
    finally:
        if cache.get(key) == token:
            cache.delete(key)


def _pull_lines(engine: Engine, pull: Pull, progress: Progress):
    endpoint = pull.registry.endpoint
    name, tag = split_reference(pull.reference)
    repository = endpoint.reference(name)
    progress.pending_log.append(f"Pulling {repository}{'@' if tag.startswith('sha256:') else ':'}{tag}")
    auth_config = auth_config_for(pull.registry, name, {"pull"})
    yield from engine_registry.pull(engine, repository, tag, auth_config)
    ref = f"{repository}@{tag}" if tag.startswith("sha256:") else f"{repository}:{tag}"
    image = engine_registry.inspect_image(engine, ref)
    Pull.objects.filter(pk=pull.pk).update(image_id=image["Id"])
    # The user's own name for what they pulled (the engine's name for it is anyone's who pulls the same name).
    name_given = ref if not tag.startswith("sha256:") else ""
    if name_given:
        own_repository, own_tag = access.split_reference(access.engine_name(pull.owner, name_given))
        engine.tag_image(image["Id"], own_repository, own_tag)
    record_image(pull.owner, engine, image["Id"], ImageOrigin.PULLED, names=[name_given] if name_given else [])
    if not progress.digest:
        prefix = f"{repository}@"
        progress.digest = next((d.removeprefix(prefix) for d in image.get("RepoDigests") or []
                                if d.startswith(prefix)), "")


def run_push(push_id: int) -> None:
    """The worker's half of a push: tag, push with progress, record the digest; ends the job."""
    TransferRunner(Push, _push_lines).run(push_id)


def run_pull(pull_id: int) -> None:
    """The worker's half of a pull onto the build engine; ends the job."""
    TransferRunner(Pull, _pull_lines).run(pull_id)


WORKER_LOST = "The worker running this {kind} was lost (no heartbeat); start it again."


def reap_lost_transfers(older_than: timedelta | None = None) -> list[str]:
    """Fail running pushes and pulls whose worker stopped sending heartbeats (periodic, see console/celery.py),
    and remove the registry name a lost push made on the build engine. Returns "push #id" / "pull #id"."""
    if older_than is None:
        older_than = timedelta(seconds=settings.BUILD_HEARTBEAT_TIMEOUT)
    reaped = []
    for model, clean_up in ((Push, _remove_push_name), (Pull, None)):
        kind = model._meta.model_name
        error = WORKER_LOST.format(kind=kind)
        lost = jobs.reap_lost(model, older_than, error, log_line=f"error: {error}", clean_up=clean_up,
                              queryset=lambda stale: stale.select_related("registry"))
        reaped.extend(f"{kind} #{job.pk}" for job in lost)
    if reaped:
        log.warning("Reaped lost transfers: %s", ", ".join(reaped))
    return reaped


def _remove_push_name(push: Push) -> None:
    """The name `registry/repository:tag` the lost worker gave the image to push it with, if it still names that
    image (a name the user gave it before is the same name for the same image: the image itself stays)."""
    target = f"{push.registry.endpoint.reference(push.repository)}:{push.tag}"
    try:
        # The reaper may run anywhere: look on the engine that holds the image (its build node's, on a farm).
        with access.engine_holding(push.owner, push.image) as engine:
            if not engine.image_exists(target):
                return
            if engine_registry.inspect_image(engine, target)["Id"] != engine_registry.inspect_image(
                    engine, push.image)["Id"]:
                return
            engine_registry.remove_tag(engine, target)
    except EngineError as exc:
        log.warning("Push #%s: could not remove the name %s: %s", push.pk, target, exc)
