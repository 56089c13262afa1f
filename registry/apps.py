from __future__ import annotations

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"

    def ready(self) -> None:
        # builds is below registry: the registry tells it where the farm's shared build cache lives.
        from builds import sharedcache
        from console import jobs
        from registry.buildcache import ConsoleRegistryCache
        from registry.events import pull_finished, push_finished
        from registry.models import Pull, Push

        sharedcache.use_store(ConsoleRegistryCache())
        # Pushes and pulls that end are events (console/events).
        jobs.on_finish(Push, push_finished)
        jobs.on_finish(Pull, pull_finished)
