"""Who may use which image, what the engine calls it, and which engine holds it: the one place that decides.

The engine is shared by every user of the console, so the engine's own names cannot say whose an image is: any
user could otherwise name another user's image by its tag, its id or an id prefix, or give their own image a name
another user builds FROM. So:

- **Names a user gives are theirs.** A user's `hello:1.0` is `console-u<id>/hello:1.0` on the engine
  (`engine_name`); two users' `hello:1.0` never collide and no user's tag can move another user's image, nor a
  shared base image (shared bases keep their plain names, which no user can make).
- **What a user may use** (`grant`): the images their own records hold (built, pulled with their credentials, or
  synced), named by record id, by a tag they gave, by a digest, by the full image id or an id prefix of at least
  12 characters; and the shared base images an operator marked (`SharedImage`). Anything else — another user's
  image, an intermediate layer nobody's record claims, an image the operator did not share — is refused, by
  whatever name or id it is reached, with a message that does not say whether it exists.
- **Which engine holds it** (`ImageGrant.engine()`): the record's build node's engine on a farm, else the build
  engine.

Builds (FROM, COPY --from, RUN --mount from=), pushes, deployments, sync and the debug box all ask here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings

from builds.models import Build, Image, SharedImage
from console import references
from console.engine import Engine, EngineNotFound
from console.engine.images import inspect_image
from console.errors import DomainError

ENGINE_NAMESPACE = "console-u{pk}"
# Engine ids as users may type them: the full sha256 or a prefix long enough not to be a guess.
_IMAGE_ID = re.compile(r"^(?:sha256:)?([0-9a-f]{12,64})$")
_DIGEST = re.compile(r"^(?P<name>[^@]+)@(?P<digest>sha256:[0-9a-f]{64})$")


class ImageAccessError(DomainError):
    """The user may not use that image (or there is none by that name for them); the message says so."""


# The name the rest of the console has used for a refusal.
ImageNotYours = ImageAccessError


@dataclass(frozen=True)
class ImageGrant:
    """An image a user may use: its engine id, the record or shared base that lets them, and where it lives."""

    image_id: str
    reference: str
    record: Image | None = None
    shared: bool = False

    def engine(self, timeout: int | None = None) -> Engine:
        return engine_of(self.record, timeout=timeout) if self.record is not None else Engine.for_builds(timeout)

    def engine_id(self, engine: Engine) -> str:
        """The image's id on `engine` ("" when the engine lacks it). A shared base is looked up by its plain name,
        which only the operator and the console make; a user's image by the id the record holds."""
        if self.image_id and engine.image_exists(self.image_id):
            return self.image_id
        if self.shared and engine.image_exists(self.reference):
            return inspect_image(engine, self.reference)["Id"]
        return ""


def split_reference(reference: str) -> tuple[str, str]:
    """(repository, tag) of `name[:tag]`, the tag `latest` when none; a registry's port is not a tag."""
    return references.split(reference)


def normalise(reference: str) -> str:
    """A reference as the engine would resolve it: the Docker Hub's default names removed, `:latest` added.

    Lenient (the engine's own names pass through it): what does not parse is only trimmed and given a tag."""
    reference = (reference or "").strip()
    try:
        return references.familiar(reference)
    except references.InvalidReference:
        pass
    if _DIGEST.match(reference):
        name, digest = reference.split("@", 1)
        return f"{normalise_name(name)}@{digest}"
    repository, tag = split_reference(reference)
    return f"{normalise_name(repository)}:{tag}"


def normalise_name(repository: str) -> str:
    """A repository's name without Docker Hub's default domain and `library/` namespace."""
    try:
        parsed = references.parse(repository)
    except references.InvalidReference:
        return repository
    if parsed.tag or parsed.digest:
        return repository
    return references.Reference(parsed.domain, parsed.path).familiar().name


def namespace_of(user) -> str:
    return ENGINE_NAMESPACE.format(pk=user.pk)


def owner_id_of_name(engine_name_: str) -> int | None:
    """The id of the user whose namespace an engine name is in (`console-u7/app:1` -> 7), or None."""
    first, _, rest = engine_name_.partition("/")
    prefix = ENGINE_NAMESPACE.partition("{pk}")[0]
    if not rest or not first.startswith(prefix) or not first[len(prefix):].isdigit():
        return None
    return int(first[len(prefix):])


def engine_name(user, reference: str) -> str:
    """The engine's name for a user's `reference`: under the user's own namespace, `console-u<id>/...`.

    A registry host in the user's name (`10.0.0.5:5000/team/app:1`) becomes a path component there
    (`10.0.0.5-5000`): the engine's name only has to be the user's alone; the console keeps the name as the user
    gave it in its records.
    """
    repository, tag = split_reference(normalise(reference))
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        repository = f"{first.replace(':', '-').lower()}/{rest}"
    return f"{namespace_of(user)}/{repository}:{tag}"


def user_names(user, repo_tags: list[str]) -> set[str]:
    """Which of an image's engine names are the user's (as engine names)."""
    prefix = namespace_of(user) + "/"
    return {tag for tag in repo_tags if tag.startswith(prefix)}


def engine_of(image: Image | None, timeout: int | None = None) -> Engine:
    """The engine that holds an image record: its build node's on a build farm, else the build engine."""
    if image is not None and image.node_id and image.node.engine_url:
        return Engine(image.node.engine_url, timeout=timeout)
    return Engine.for_builds(timeout=timeout)


def _refused(reference: str) -> ImageAccessError:
    return ImageAccessError(
        f"You have no image {reference!r}: name one of your images (by tag, id or record number) or a shared base "
        "image."
    )


def grant(user, reference: str) -> ImageGrant:
    """May `user` use the image `reference` names? Returns the grant, or raises ImageAccessError.

    Only the console's records decide: the engine is never asked what a name means, so a name or id prefix that
    reaches another user's image on the shared engine reaches nothing here.
    """
    reference = (reference or "").strip()
    if not reference or len(reference) > 500 or any(char.isspace() for char in reference):
        raise ImageAccessError("Name the image: a tag like hello:1.0, an image id, or one of your image numbers.")
    mine = Image.objects.for_user(user).select_related("node")
    if reference.isdigit() and len(reference) < 12:
        record = mine.filter(pk=int(reference)).first()
        if record is None:
            raise ImageAccessError(f"You have no image record {reference}.")
        return ImageGrant(record.image_id, record.image_id, record=record)
    if match := _IMAGE_ID.match(reference):
        record = mine.filter(image_id__startswith=f"sha256:{match.group(1)}").order_by("-recorded").first()
        if record is not None:
            return ImageGrant(record.image_id, record.image_id, record=record)
        shared = SharedImage.objects.filter(image_id__startswith=f"sha256:{match.group(1)}").first()
        if shared is not None:
            return ImageGrant(shared.image_id, shared.reference, shared=True)
        raise _refused(reference)
    normal = normalise(reference)
    if _DIGEST.match(normal):
        digest = normal.split("@", 1)[1]
        for record in mine.filter(digests__icontains=digest):
            if any(normalise(item) == normal for item in record.digests):
                return ImageGrant(record.image_id, record.image_id, record=record)
        raise _refused(reference)
    for record in mine.filter(tags__icontains=split_reference(normal)[0]).order_by("-recorded"):
        if any(normalise(tag) == normal for tag in record.tags):
            return ImageGrant(record.image_id, record.image_id, record=record)
    shared = SharedImage.objects.filter(reference=normal).first()
    if shared is not None:
        return ImageGrant(shared.image_id, shared.reference, shared=True)
    if split_reference(normal)[0] == settings.CONSOLE_BASE_IMAGE:
        # The console's own offline base image (import_base_image), on every engine under the same name.
        return ImageGrant("", normal, shared=True)
    raise _refused(reference)


def grant_for_build_layer(build: Build) -> ImageGrant:
    """The last good layer of a failed build, which the worker learnt from the engine's own answers: the debug box
    runs there, on the engine the build ran on."""
    if not build.last_good_layer:
        raise ImageAccessError("This build has no last good layer.")
    return ImageGrant(build.last_good_layer, build.last_good_layer)


def is_shared_reference(reference: str) -> bool:
    normal = normalise(reference)
    return (split_reference(normal)[0] == settings.CONSOLE_BASE_IMAGE
            or SharedImage.objects.filter(reference=normal).exists())


def share_image(reference: str, image_id: str = "") -> SharedImage:
    """Let every user build FROM `reference` (an operator's decision: `manage.py share_image`)."""
    shared, _ = SharedImage.objects.update_or_create(reference=normalise(reference), defaults={"image_id": image_id})
    return shared


def engine_holding(user, image_id: str, timeout: int | None = None) -> Engine:
    """The engine that holds an image the user's records know by its engine id (the build engine otherwise)."""
    record = Image.objects.for_user(user).filter(image_id=image_id).select_related("node").first()
    return engine_of(record, timeout=timeout)


def resolve_build_images(user, engine: Engine, text: str, build_args: dict[str, str]) -> dict[str, str]:
    """{reference: engine id} for every image the Dockerfile reads, checked again where the build runs (records
    change between the request and the worker), so that the Dockerfile the engine gets names ids, never names.

    ONBUILD triggers of the base images run in the user's build too: an image one of them reads (`ONBUILD COPY
    --from=<someone's id>`) or a URL one fetches must pass the same checks, or the build is refused.
    Raises ImageAccessError naming the line."""
    from builds import dockerfile
    from console import netpolicy

    resolved: dict[str, str] = {}
    for use in dockerfile.parse(text, build_args).image_uses:
        try:
            granted = grant(user, use.reference)
        except ImageAccessError as exc:
            raise ImageAccessError(f"Line {use.line}: {use.how} {use.reference}: {exc}") from None
        image_id = granted.engine_id(engine)
        if not image_id:
            raise ImageAccessError(f"Line {use.line}: {use.how} {use.reference}: the build engine does not have it.")
        resolved[use.reference] = image_id
        if use.how != "FROM":
            continue
        triggers = (inspect_image(engine, image_id).get("Config") or {}).get("OnBuild") or []
        if not triggers:
            continue
        inherited = dockerfile.parse("FROM scratch\n" + "\n".join(triggers) + "\n", build_args)
        for trigger in inherited.image_uses:
            try:
                grant(user, trigger.reference)
            except ImageAccessError:
                raise ImageAccessError(
                    f"Line {use.line}: FROM {use.reference}: its ONBUILD {trigger.how} {trigger.reference} reads an "
                    "image that is not yours."
                ) from None
        for remote in inherited.remote_sources:
            reason = netpolicy.refused_reason(remote.url, user=user, purpose=netpolicy.BUILD_URL)
            if reason:
                raise ImageAccessError(f"Line {use.line}: FROM {use.reference}: its ONBUILD ADD: {reason}")
    return resolved


# The repository under a user's namespace that names their images by id for BuildKit, which refuses `FROM <id>`.
PINNED_REPOSITORY = "by-id"


def pinned_name(user, image_id: str) -> str:
    """A name for one of the user's images that only the console gives and only this image has:
    `console-u<id>/by-id:<sha256 hex>`. The same for every build of the same image, so the Dockerfile BuildKit is
    sent reads the same each time (its COPY steps stay cached)."""
    return f"{namespace_of(user)}/{PINNED_REPOSITORY}:{image_id.removeprefix('sha256:')}"


def _engine_id(engine: Engine, reference: str) -> str:
    try:
        return inspect_image(engine, reference)["Id"]
    except EngineNotFound:
        return ""


def build_names(user, engine: Engine, resolved: dict[str, str]) -> dict[str, str]:
    """{reference: the name BuildKit is sent} for the images `resolve_build_images` granted: a shared base keeps
    its plain name while the engine gives that name the granted image; a user's image gets its pinned name, tagged
    on the engine here (a name in the user's own namespace, so no other user's build can mean it)."""
    names = {}
    for reference, image_id in resolved.items():
        if is_shared_reference(reference) and _engine_id(engine, reference) == image_id:
            names[reference] = reference
            continue
        name = pinned_name(user, image_id)
        repository, tag = split_reference(name)
        engine.tag_image(image_id, repository, tag)
        names[reference] = name
    return names
