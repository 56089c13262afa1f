"""A deployment that ends becomes a `deployment.finished` event (console/events), registered in
FleetConfig.ready()."""

from __future__ import annotations

from console.events.constants import EventKind
from console.events.services import record


def deployment_finished(deployment) -> None:
    hosts = [{"host": target.host_name, "status": target.status, "url": target.url}
             for target in deployment.targets.all()]
    record(deployment.owner, EventKind.DEPLOYMENT_FINISHED, key=f"deployment:{deployment.pk}", data={
        "deployment": deployment.pk, "number": deployment.number, "name": deployment.name,
        "status": deployment.status, "image": deployment.image, "image_digest": deployment.image_digest,
        "hosts": hosts, "error": deployment.error[:500],
    })
