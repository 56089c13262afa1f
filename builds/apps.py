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
        from console import netpolicy

        netpolicy.register_service_urls(build_node_engine_urls)
