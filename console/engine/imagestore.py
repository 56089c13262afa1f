"""Keeping images on the build engine: listing them, who uses one, tagging and removing."""

from __future__ import annotations

from typing import Any

from console.engine.core import Engine


def list_images(engine: Engine, every: bool = False) -> list[dict[str, Any]]:
    """The top-level images, tagged or not (`docker images`), or `every` one, intermediate images included
    (`docker images -a`): [{id, tags, labels}]."""
    with engine.errors("Listing images"):
        raw = engine.api.images(all=every)
    return [
        {
            "id": item["Id"],
            "tags": [tag for tag in item.get("RepoTags") or [] if tag != "<none>:<none>"],
            "labels": item.get("Labels") or {},
        }
        for item in raw
    ]


def containers_using(engine: Engine, image_id: str) -> list[str]:
    """Names of the containers, running or stopped, made from the image or from one built on it
    (`docker ps -a --filter ancestor=`)."""
    with engine.errors(f"Listing the containers of image {image_id}"):
        raw = engine.api.containers(all=True, filters={"ancestor": image_id})
    return [((item.get("Names") or [item["Id"][:12]])[0]).lstrip("/") for item in raw]


def remove_image(engine: Engine, image_id: str) -> None:
    """`docker rmi -f`: every name of the image, then the image. The engine still refuses (EngineConflict)
    while a running container or a child image needs it; callers check containers first."""
    with engine.errors(f"Removing image {image_id}"):
        engine.api.remove_image(image_id, force=True)
