"""Reading images on an engine: inspect, history, and the `docker save` stream of an image."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from console.engine.core import Engine

EXPORT_CHUNK_SIZE = 1024 * 1024
# Engine 20.10 exports the whole image to a temporary folder before it answers at all: a big image can take
# far longer than the engine's usual timeout to send its first byte.
EXPORT_START_TIMEOUT = 30 * 60


def inspect_image(engine: Engine, ref: str) -> dict[str, Any]:
    """The engine's description of an image (`docker image inspect`): Id, RepoTags, Config, RootFS, Size..."""
    with engine.errors(f"Inspecting image {ref}"):
        return engine.api.inspect_image(ref)


def image_history(engine: Engine, ref: str) -> list[dict[str, Any]]:
    """The image's history, newest step first (`docker history`): Id, Created, CreatedBy, Size, Comment."""
    with engine.errors(f"Reading the history of image {ref}"):
        return engine.api.history(ref)


def export_image(engine: Engine, image_ref: str, chunk_size: int = EXPORT_CHUNK_SIZE) -> Iterator[bytes]:
    """The `docker save` tar of one image, as chunks of at most `chunk_size` bytes, never held whole.

    The request is made on the first `next()`. What `APIClient.get_image` does, but keeping the response so
    that a consumer stopping early (a failed analysis, a closed download) closes the connection at once
    instead of leaving the engine writing into it until garbage collection.
    """
    action = f"Exporting image {image_ref}"
    api = engine.api
    with engine.errors(action):
        response = api._get(
            api._url("/images/{0}/get", image_ref), stream=True, timeout=(engine.timeout, EXPORT_START_TIMEOUT)
        )
    try:
        with engine.errors(action):
            # The SDK's raw stream: checks the status, then lifts the read timeout, since the engine may
            # take a long time to write a big image's layers before the first byte.
            yield from api._stream_raw_result(response, chunk_size, False)
    finally:
        response.close()


def image_events(engine: Engine, since: float, until: float) -> list[dict[str, Any]]:
    """The engine's image events between two moments (`docker events --filter type=image --since --until`):
    [{action: tag|untag|delete|pull|import|load|..., id: image id, name: the name it concerns or ""}], oldest
    first. With `until` the engine answers with what it has and closes the stream: no long-lived connection."""
    with engine.errors("Reading the engine's image events"):
        raw = engine.api.events(since=since, until=until, filters={"type": "image"}, decode=True)
        return [
            {"action": event.get("Action") or event.get("status") or "", "id": event.get("id") or "",
             "name": ((event.get("Actor") or {}).get("Attributes") or {}).get("name") or ""}
            for event in raw
        ]
