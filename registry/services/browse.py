"""Browsing a registry (its catalog of repositories, a repository's tags with their digest, size and date),
deleting a tag or a repository (never an image another tag still points at), and publishing repositories of the
console's own registry."""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass, field
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_datetime

from console import references
from console.audit.constants import Action
from console.audit.services import record
from registry.client import RegistryClient, RegistryHTTPError, RegistryRefused
from registry.constants import PUSH, READ_ONLY, RegistryKind
from registry.models import GarbageCollection, PublicRepository, RegistryAccount
from registry.services.accounts import RegistryError, client_for
from registry.tokens import Scope, granted_actions, namespace_of, parse_scopes, sign_token

CATALOG_PAGE = 100
CATALOG_LIMIT = 5000
NO_CATALOG = (
    "This registry does not offer a catalog of its repositories (Docker Hub, Quay, GCR and GHCR keep theirs "
    "closed): open a repository by its name instead."
)


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
    return sorted(_tag_names(client_for(account), repository))


def _tag_names(client, repository: str, params: dict | None = None, missing: type = RegistryError) -> list:
    """The repository's `tags/list`; a repository the registry does not have raises `missing`."""
    try:
        response = client.get(f"/v2/{repository}/tags/list", **({"params": params} if params else {}))
        return response.json().get("tags") or []
    except RegistryHTTPError as exc:
        if exc.status == 404 and not isinstance(exc, RegistryRefused):
            raise missing(f"The registry has no repository {repository!r}.") from None
        raise RegistryError(str(exc)) from None
    except (ValueError, AttributeError):
        raise RegistryError("The registry's answer is not a list of tags.") from None


# -- a repository's tags page: per tag its digest, size and date; deleting one ----------------------------------

# Tags per page: each costs a manifest GET (and a config GET per distinct image), so a page stays quick.
TAGS_PAGE = 50
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
INDEX_TYPES = frozenset(MANIFEST_TYPES[2:])
DELETE_UNSUPPORTED = "This registry does not allow deleting."
DELETE_REFUSED = "The registry refused to delete from {repository} with this account's credentials."
# What users write for Docker Hub besides its index name.
DOCKERHUB_NAMES = ("index.docker.io", "registry-1.docker.io")
NOT_YOURS = "Only repositories under {namespace}/ are yours to delete from."


class TagNotFound(RegistryError):
    status = HTTPStatus.NOT_FOUND.value


class DeleteRefused(RegistryError):
    """The user may not delete there, or the registry does not let anyone (a 403 in the API)."""

    status = HTTPStatus.FORBIDDEN.value


class TagMoved(RegistryError):
    """The tag points at another image than the one the user chose to delete."""

    status = HTTPStatus.CONFLICT.value


@dataclass
class TagDetail:
    """One tag as its manifest says: `size` is the config's and the layers' bytes (None for a multi-platform
    index, whose images would each cost more requests), `created` the image config's `created` (registries keep
    no push date), `error` why the manifest could not be read ("" when it was)."""

    name: str
    pull: str
    digest: str = ""
    media_type: str = ""
    size: int | None = None
    created: datetime.datetime | None = None
    platforms: int = 0
    error: str = ""
    # The other tags of the page on the same image: deleting this one (by digest) deletes them too.
    same_image: list[str] = field(default_factory=list)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


@dataclass
class TagPage:
    """A page of a repository's tags: `next_last` is the `last` of the next page ("" on the last page);
    `may_delete` whether the user may try to delete here at all (the registry may still refuse)."""

    repository: str
    reference: str
    tags: list[TagDetail] = field(default_factory=list)
    last: str = ""
    next_last: str = ""
    may_delete: bool = False


def _check_repository(repository: str) -> None:
    if not references.is_path(repository):
        raise ValidationError({"repository": f"{repository!r} is not a repository name."})


def _check_tag(tag: str) -> None:
    if not references.is_tag(tag):
        raise ValidationError({"tag": f"{tag!r} is not a tag."})


def repository_name(account: RegistryAccount, text: str) -> str:
    """The repository a user typed to open (`team/app`, `ghcr.io/team/app`, `ubuntu` on Docker Hub), as the
    registry's API names it; ValidationError says what is wrong with it."""
    text = (text or "").strip()
    try:
        parsed = references.parse(text)
    except references.InvalidReference as exc:
        raise ValidationError({"name": f"{text!r} is not a repository name: {exc}."}) from None
    if parsed.tag or parsed.digest:
        raise ValidationError({"name": "Give the repository without a tag or digest: the page lists its tags."})
    index = account.endpoint.index
    domain, path = parsed.domain, parsed.path
    # `localhost/app` or `team/app`: a first component without a dot or port is part of the path.
    if domain and domain != index and "." not in domain and ":" not in domain and domain != "localhost":
        domain, path = "", f"{domain}/{path}"
    names = {index, *DOCKERHUB_NAMES} if account.kind == RegistryKind.DOCKERHUB else {index}
    if domain and domain not in names:
        raise ValidationError({"name": f"{domain} is another registry than this account's ({index})."})
    if account.kind == RegistryKind.DOCKERHUB and "/" not in path:
        path = f"library/{path}"
    return path


def may_delete(account: RegistryAccount, repository: str) -> bool:
    """Whether the account's owner may try to delete tags of `repository`: on the console's own registry where
    they may push (their namespace, the token endpoint's decision); elsewhere the registry decides by the
    account's credentials."""
    if not account.is_console:
        return True
    return PUSH in granted_actions(account.owner, Scope("repository", repository, frozenset({PUSH})), internal=True)


def _delete_client(account: RegistryAccount, repository: str) -> RegistryClient:
    """For the console's own registry, a client whose token also grants `delete` of this one repository (the
    token endpoint grants owners pull and push only, so `docker` clients cannot delete): `may_delete` was asked
    first. Other registries: the account's own client."""
    client = client_for(account)
    read = client.token_source
    if not account.is_console or read is None:
        return client

    def source(params: dict[str, str]) -> str:
        # Distribution asks `delete` for a DELETE (older versions `*`): granted for this repository only.
        asked = {action for scope in parse_scopes([params.get("scope", "")])
                 if scope.type == "repository" and scope.name == repository
                 for action in scope.actions & {"delete", "*"}}
        if not asked:
            return read(params)
        access = [{"type": "repository", "name": repository, "actions": sorted(asked)}]
        return sign_token(account.owner.get_username(), params.get("service", settings.REGISTRY_SERVICE),
                          access)["token"]

    client.token_source = source
    return client


def _manifest(client: RegistryClient, repository: str, reference: str) -> tuple[str, dict, str]:
    """(digest, manifest, media type) of one tag or digest, from one GET."""
    response = client.get(f"/v2/{repository}/manifests/{reference}", headers={"Accept": ", ".join(MANIFEST_TYPES)})
    try:
        manifest = json.loads(response.content)
    except ValueError:
        raise RegistryHTTPError("The registry's answer is not a manifest.") from None
    if not isinstance(manifest, dict):
        raise RegistryHTTPError("The registry's answer is not a manifest.")
    digest = response.headers.get("Docker-Content-Digest") or f"sha256:{hashlib.sha256(response.content).hexdigest()}"
    media_type = manifest.get("mediaType") or response.headers.get("Content-Type", "").split(";")[0]
    return digest, manifest, media_type


def _size(manifest: dict) -> int | None:
    """The bytes a pull fetches: the config and the layers, as the manifest lists them."""
    try:
        parts = [manifest["config"], *manifest.get("layers", [])]
        return sum(int(part.get("size", 0)) for part in parts)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _created(client: RegistryClient, repository: str, manifest: dict, seen: dict[str, datetime.datetime | None]
             ) -> datetime.datetime | None:
    """The image config's `created`; `seen` keeps each config read once per page (tags often share one)."""
    config = manifest.get("config")
    digest = config.get("digest", "") if isinstance(config, dict) else ""
    if not references.is_sha256_digest(digest):
        return None
    if digest not in seen:
        try:
            body = client.get(f"/v2/{repository}/blobs/{digest}").json()
            seen[digest] = parse_datetime(body.get("created") or "") if isinstance(body, dict) else None
        except (RegistryHTTPError, ValueError, TypeError):
            seen[digest] = None
    return seen[digest]


def _tag_detail(client: RegistryClient, repository: str, tag: TagDetail, seen: dict) -> None:
    try:
        tag.digest, manifest, tag.media_type = _manifest(client, repository, tag.name)
    except RegistryHTTPError as exc:
        tag.error = "The registry has no manifest for this tag." if exc.status == 404 else str(exc)
        return
    if tag.is_index:
        manifests = manifest.get("manifests")
        tag.platforms = len(manifests) if isinstance(manifests, list) else 0
        annotations = manifest.get("annotations")
        if isinstance(annotations, dict):
            tag.created = parse_datetime(str(annotations.get("org.opencontainers.image.created", "")))
        return
    tag.size = _size(manifest)
    tag.created = _created(client, repository, manifest, seen)


def tags_page(account: RegistryAccount, repository: str, last: str = "", n: int | None = None) -> TagPage:
    """At most `n` (TAGS_PAGE) tags after `last` (the registry's own `n`/`last` pagination; a registry that
    ignores it is cut here), each with its digest, size and date: one tags list, a manifest GET per tag and a
    config GET per distinct image."""
    _check_repository(repository)
    if last:
        _check_tag(last)
    n = n or TAGS_PAGE
    client = client_for(account)
    # One more than shown: whether a next page exists, whatever the registry says in its `Link` header.
    params = {"n": n + 1, **({"last": last} if last else {})}
    names = _tag_names(client, repository, params, missing=TagNotFound)
    names = sorted(name for name in names if isinstance(name, str) and (not last or name > last))
    shown = names[:n]
    page = TagPage(repository, account.endpoint.reference(repository), last=last,
                   next_last=shown[-1] if len(names) > n else "", may_delete=may_delete(account, repository))
    seen: dict[str, datetime.datetime | None] = {}
    for name in shown:
        detail = TagDetail(name=name, pull=f"docker pull {page.reference}:{name}")
        _tag_detail(client, repository, detail, seen)
        page.tags.append(detail)
    for detail in page.tags:
        detail.same_image = [other.name for other in page.tags
                             if detail.digest and other.digest == detail.digest and other is not detail]
    return page


class RegistryReadOnly(RegistryError):
    """A garbage collection has the console's registry read-only (registry/services/gc.py)."""

    status = HTTPStatus.SERVICE_UNAVAILABLE.value


def check_writable(account: RegistryAccount) -> None:
    if account.is_console and GarbageCollection.objects.in_progress():
        raise RegistryReadOnly(READ_ONLY)


class TagShared(RegistryError):
    """Other tags point at the image a tag delete would delete: Distribution deletes a manifest by digest, with
    every tag on it, so the delete would take tags the user did not name (a 409 naming them)."""

    status = HTTPStatus.CONFLICT.value

    def __init__(self, message: str, others: list[str]) -> None:
        super().__init__(message)
        self.others = others


TAG_SHARED = ("{repository}:{tag} is the same image ({digest}) as {others}: the registry deletes an image with "
              "every tag on it, so deleting {tag} would delete {them} too. Name {them} to delete together "
              "(also={first}), or push another image to {them} first.")


def _delete_error(exc: RegistryHTTPError, repository: str, missing: str) -> RegistryError:
    """The refusal for a registry's answer to a DELETE of a manifest."""
    if isinstance(exc, RegistryRefused) or exc.status is None or exc.status >= 500:
        return RegistryError(str(exc))
    if exc.status == 405:
        return DeleteRefused(DELETE_UNSUPPORTED)
    if exc.status in (401, 403):
        return DeleteRefused(DELETE_REFUSED.format(repository=repository))
    if exc.status == 404:
        return TagNotFound(missing)
    return RegistryError(str(exc))


def _digest_of(client: RegistryClient, repository: str, tag: str) -> str | None:
    """The digest `tag` points at now (a HEAD, as every pull asks it); None when the tag is gone."""
    try:
        response = client.request("HEAD", f"/v2/{repository}/manifests/{tag}",
                                  headers={"Accept": ", ".join(MANIFEST_TYPES)})
    except RegistryHTTPError as exc:
        if exc.status == 404 and not isinstance(exc, RegistryRefused):
            return None
        raise RegistryError(str(exc)) from None
    digest = response.headers.get("Docker-Content-Digest", "")
    if not references.is_sha256_digest(digest):
        # Without it, which tags share the image cannot be known: nothing is deleted on a guess.
        raise RegistryError("The registry does not say which image a tag points at (no Docker-Content-Digest).")
    return digest


def tags_by_digest(client: RegistryClient, repository: str) -> dict[str, list[str]]:
    """{digest: its tags} of every tag of the repository, asked of the registry now."""
    found: dict[str, list[str]] = {}
    for name in sorted(set(_tag_names(client, repository, missing=TagNotFound))):
        if not isinstance(name, str) or not references.is_tag(name):
            continue
        digest = _digest_of(client, repository, name)
        if digest:
            found.setdefault(digest, []).append(name)
    return found


def _delete_manifest(client: RegistryClient, repository: str, digest: str, missing: str) -> None:
    try:
        client.delete(f"/v2/{repository}/manifests/{digest}")
    except RegistryHTTPError as exc:
        raise _delete_error(exc, repository, missing) from None


def delete_image(client: RegistryClient, repository: str, digest: str, tags: set[str],
                 current: dict[str, list[str]] | None = None) -> None:
    """Delete the manifest `digest` when no tag but `tags` points at it; TagShared when others do. `current` is
    `tags_by_digest` asked just before (a run deleting many images asks once). The one way the console deletes an
    image from a registry: tag deletes and retention runs come here."""
    if current is None:
        current = tags_by_digest(client, repository)
    others = sorted(set(current.get(digest, [])) - tags)
    if others:
        named = sorted(tags)
        raise TagShared(TAG_SHARED.format(
            repository=repository, tag=", ".join(named), digest=digest[:19] + "…", others=", ".join(others),
            them="them" if len(others) > 1 else others[0], first=others[0]), others)
    _delete_manifest(client, repository, digest, f"{repository} has no image {digest}.")


def delete_tag(user, account: RegistryAccount, repository: str, tag: str, digest: str = "", request=None,
               also: list[str] | None = None) -> str:
    """Delete `tag` and record it; `digest`, when given, must still be the tag's (the one the user saw).

    Distribution deletes manifests by digest, with every tag on that image: when other tags point at it, the delete
    is refused (TagShared, naming them) unless the user named them all in `also`, and then they go together.
    Returns the digest."""
    _check_repository(repository)
    _check_tag(tag)
    also = sorted({name for name in (also or []) if name and name != tag})
    for name in also:
        _check_tag(name)
    if digest and not references.is_sha256_digest(digest):
        raise ValidationError({"digest": f"{digest!r} is not a sha256 digest."})
    if not may_delete(account, repository):
        raise DeleteRefused(NOT_YOURS.format(namespace=namespace_of(account.owner)))
    check_writable(account)
    client = _delete_client(account, repository)
    missing = f"{repository} has no tag {tag!r}."
    current = _digest_of(client, repository, tag)
    if current is None:
        raise TagNotFound(missing)
    if digest and digest != current:
        raise TagMoved(f"{repository}:{tag} points at another image now ({current}): look again before deleting.")
    delete_image(client, repository, current, {tag, *also})
    record(user, Action.REGISTRY_TAG_DELETED, target=f"{account.endpoint.reference(repository)}:{tag}",
           detail={"registry": account.pk, "repository": repository, "tag": tag, "digest": current,
                   **({"also": also} if also else {})},
           request=request)
    return current


@dataclass
class RepositoryDeleted:
    repository: str
    tags: list[str]
    digests: list[str]


def delete_repository(user, account: RegistryAccount, repository: str, request=None) -> RepositoryDeleted:
    """Delete every image the repository's tags point at (by digest, through the registry's API) and record it.
    The registry keeps the empty repository in its catalog; its blobs go at the next garbage collection."""
    _check_repository(repository)
    if not may_delete(account, repository):
        raise DeleteRefused(NOT_YOURS.format(namespace=namespace_of(account.owner)))
    check_writable(account)
    client = _delete_client(account, repository)
    images = tags_by_digest(client, repository)
    if not images:
        raise TagNotFound(f"{repository} has no tags.")
    # Every tag of the repository goes: no kept tag can share an image with them (manifests are per repository).
    for digest in sorted(images):
        _delete_manifest(client, repository, digest, f"{repository} has no image {digest}.")
    tags = sorted(tag for names in images.values() for tag in names)
    record(user, Action.REGISTRY_REPOSITORY_DELETED, target=account.endpoint.reference(repository),
           detail={"registry": account.pk, "repository": repository, "tags": tags, "digests": sorted(images)},
           request=request)
    return RepositoryDeleted(repository, tags, sorted(images))


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
