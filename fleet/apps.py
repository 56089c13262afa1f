from __future__ import annotations

from django.apps import AppConfig


class FleetConfig(AppConfig):
    name = "fleet"

    def ready(self) -> None:
        from console import jobs
        from fleet.events import deployment_finished
        from fleet.models import Deployment

        # A deployment that ends is an event (console/events).
        jobs.on_finish(Deployment, deployment_finished)
