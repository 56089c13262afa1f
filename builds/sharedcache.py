"""The build cache a farm shares: BuildKit builds on a farm node export their cache inline in the image and push
the image to a cache repository of the console's registry, and the next build of the same repository and
Dockerfile, on whichever node, imports it from there (`--cache-from`), so that its unchanged steps are served
from the cache even on a node that never built it.

Only the console touches a cache repository: they live in a namespace no account owns, one repository per
source repository (a repository belongs to one owner, so one user's cache never serves another's build), one tag
per Dockerfile and target. The registry app provides the store (registry/buildcache.py, registered when the apps
are ready): where a cache lives and the credentials for it, which builds cannot make themselves (the registry is
above builds).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings

from builds.models import Build


@dataclass(frozen=True)
class CacheLocation:
    """A cache repository and tag in a registry (`registry` is host:port, as engines and config.json name it)."""

    registry: str
    repository: str
    tag: str

    @property
    def reference(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"


class CacheStore(Protocol):
    def location(self, repository_id: int, key: str) -> CacheLocation | None:
        """Where the cache of `key` (cache_key) for that source repository lives; None when it cannot be kept."""

    def pull_credentials(self, location: CacheLocation) -> tuple[str, str]:
        """(username, password) with which the Docker CLI may pull the location and nothing else."""

    def push_auth(self, location: CacheLocation) -> dict[str, str]:
        """The engine's auth_config to push the location."""


_store: CacheStore | None = None


def use_store(store: CacheStore | None) -> None:
    global _store
    _store = store


def cache_key(build: Build) -> str:
    """One cache per Dockerfile and target of a repository: its builds' steps are what the cache can serve."""
    return hashlib.sha256(f"{build.path}\0{build.dockerfile}\0{build.target}".encode()).hexdigest()[:20]


def location_for(build: Build) -> CacheLocation | None:
    """Where `build` imports and exports its cache; None when it shares none (sharing is off, the build runs on
    the single-engine default, or the registry cannot keep it)."""
    if not settings.BUILD_CACHE_SHARING or build.node_id is None or _store is None:
        return None
    return _store.location(build.repository_id, cache_key(build))


def pull_credentials(location: CacheLocation) -> tuple[str, str]:
    return _store.pull_credentials(location)


def push_auth(location: CacheLocation) -> dict[str, str]:
    return _store.push_auth(location)
