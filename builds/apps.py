from __future__ import annotations

from django.apps import AppConfig


def build_node_engine_urls() -> list[str]:
    """The engines of the build nodes: services of the console's own, which no user may aim it at."""
    from builds.models import BuildNode

    return list(BuildNode.objects.values_list("engine_url", flat=True))


class BuildsConfig(AppConfig):
    name = "builds"

    def ready(self) -> None:
        # console.netpolicy is below builds and imports nothing from it: builds tells it about its nodes.
        from builds.events import build_finished
        from builds.models import Build
        from console import jobs, netpolicy

        netpolicy.register_service_urls(build_node_engine_urls)
        # A build that ends is an event (console/events), whoever ended it.
        jobs.on_finish(Build, build_finished)
