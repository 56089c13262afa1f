from __future__ import annotations

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"

    def ready(self) -> None:
        # builds is below registry: the registry tells it where the farm's shared build cache lives.
        from builds import sharedcache
        from registry.buildcache import ConsoleRegistryCache

        sharedcache.use_store(ConsoleRegistryCache())
