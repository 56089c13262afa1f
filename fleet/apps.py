from __future__ import annotations

from django.apps import AppConfig


class FleetConfig(AppConfig):
    name = "fleet"

    def ready(self) -> None:
        from console import jobs
        from console.events.constants import EventKind
        from console.events.services import on_event
        from fleet.events import deployment_finished
        from fleet.models import Deployment
        from fleet.services.follow import image_pushed

        # A deployment that ends is an event (console/events); a push to a tag an app follows deploys it.
        jobs.on_finish(Deployment, deployment_finished)
        on_event(EventKind.IMAGE_PUSHED, image_pushed)
