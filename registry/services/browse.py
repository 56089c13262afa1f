"""Browsing a registry (its catalog of repositories, a repository's tags) and publishing repositories of the
console's own registry."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from console import references
from console.audit.constants import Action
from console.audit.services import record
from registry.client import RegistryHTTPError, RegistryRefused
from registry.models import PublicRepository, RegistryAccount
from registry.services.accounts import RegistryError, client_for
from registry.tokens import namespace_of

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
