"""Pushes and pulls: triggering them (the image to push, the reference to pull), the worker's run
(TransferRunner, with Progress as the job's heartbeat), the lock on a pushed name (exclusive_name) and the
reaper of transfers whose worker was lost."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from builds import access
from builds.constants import ImageOrigin
from builds.services.images import record_image
from console import jobs, references
from console.audit.constants import Action
from console.audit.services import record
from console.constants import JobStatus
from console.crypto import DecryptionError
from console.engine import Engine, EngineError
from console.engine import registry as engine_registry
from registry.constants import PROGRESS_INTERVAL
from registry.models import Pull, Push, RegistryAccount
from registry.services.accounts import RegistryError, check_destination, destination_refusal
from registry.tokens import Scope, SigningMaterialMissing, issue_token, namespace_of, service_pull_credential

log = logging.getLogger(__name__)

# The tasks a worker moves images with (registry/tasks.py), sent by name.
RUN_PUSH_TASK = "registry.run_push"
RUN_PULL_TASK = "registry.run_pull"

LAYER_ID_RE = re.compile(r"^[0-9a-f]{12}$")


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


def service_auth_config(account: RegistryAccount, repository: str) -> dict[str, str]:
    """What a swarm service carries to pull `repository` on every node Swarm starts a task on, for as long as the
    service runs unchanged: the account's credentials, or for the console's own registry a long-lived credential
    that only pulls that repository (registry/tokens.py service_pull_credential), which each node exchanges at the
    console's token endpoint, never a token that expires within minutes. Renewed by each update of the service."""
    check_destination(account)
    if account.is_console:
        username, password = service_pull_credential(account.pk, account.owner_id, repository)
        return {"username": username, "password": password, "serveraddress": account.endpoint.auth_server}
    return auth_config_for(account, repository, {"pull"})


def grant_image(owner, image: str, missing: str = "") -> tuple[access.ImageGrant, str]:
    """One of the owner's images (by record number, tag, digest or id) or a shared base image (builds/access.py
    decides), and its id on the engine that holds it. A refusal, or an engine that no longer has the image, is a
    ValidationError on `image`; `missing` ends the latter's message (what to do instead)."""
    try:
        granted = access.grant(owner, image)
    except access.ImageAccessError as exc:
        raise ValidationError({"image": str(exc)}) from None
    with granted.engine() as engine:
        image_id = granted.engine_id(engine)
    if not image_id:
        raise ValidationError({"image": f"The build engine no longer has the image {image!r}{missing}."})
    return granted, image_id


def resolve_image(owner, image: str) -> str:
    """The engine id of the image to push (grant_image)."""
    return grant_image(owner, image)[1]


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
            layer = self.layers.setdefault(layer_id, {"id": layer_id, "status": "", "current": 0, "total": 0,
                                                      "done": False})
            layer["status"] = status
            if detail.get("total"):
                layer["total"] = int(detail["total"])
            if detail.get("current") is not None:
                layer["current"] = int(detail["current"])
            if status in ("Pushed", "Layer already exists", "Pull complete", "Already exists",
                          "Download complete") or status.startswith("Mounted from"):
                # `done` too: a small layer goes in one piece, with no total to fill a bar with.
                layer["current"], layer["done"] = layer["total"], True
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
