"""The console's registry as the build farm's cache store (builds/sharedcache.py): one repository per source
repository in the namespace no account owns, tokens the console signs for itself to push, and a short-lived
credential naming one cache repository for the CLI that imports it (registry/tokens.py)."""

from __future__ import annotations

from django.conf import settings

from builds.sharedcache import CacheLocation
from console.accounts.usernames import BUILD_CACHE_NAMESPACE
from registry.tokens import SigningMaterialMissing, build_cache_credential, build_cache_token, load_signing_material


class ConsoleRegistryCache:
    def location(self, repository_id: int, key: str) -> CacheLocation | None:
        try:
            load_signing_material()
        except SigningMaterialMissing:
            # No token can be signed: the registry is not set up (`manage.py registry_config`).
            return None
        return CacheLocation(settings.REGISTRY_ADDRESS, f"{BUILD_CACHE_NAMESPACE}/r{repository_id}", key)

    def pull_credentials(self, location: CacheLocation) -> tuple[str, str]:
        return build_cache_credential(location.repository)

    def push_auth(self, location: CacheLocation) -> dict[str, str]:
        return {"registrytoken": build_cache_token(location.repository, {"pull", "push"})}
