"""A build that ends becomes a `build.finished` event (console/events), registered in BuildsConfig.ready()."""

from __future__ import annotations

from console.events.constants import EventKind
from console.events.services import record


def build_finished(build) -> None:
    image_ids = list(build.images.values_list("image_id", flat=True))
    record(build.owner, EventKind.BUILD_FINISHED, key=f"build:{build.pk}", repository=build.repository.name, data={
        "build": build.pk, "number": build.number, "status": build.status, "repository": build.repository.name,
        "tags": list(build.tags or []), "image_ids": image_ids,
        "error": build.error[:500] if build.error else "",
    })
