"""Moving an image from one engine to another without a registry: `docker save | docker load`, streamed.

The saved tar flows chunk by chunk from the source engine's `/images/{name}/get` into the target engine's
`/images/load` (chunked transfer encoding): it is never held whole in memory nor written to disk.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from console.engine.core import Engine, EngineError

CHUNK_SIZE = 1024 * 1024


def _saved(source: Engine, reference: str, chunk_size: int, counter: list[int]) -> Iterator[bytes]:
    # Errors of the source surface while the target reads this stream: translate them here, so that they
    # name the source engine, and pass through the target's translation untouched (they are EngineErrors).
    with source.errors(f"Saving {reference}"):
        for chunk in source.api.get_image(reference, chunk_size=chunk_size):
            counter[0] += len(chunk)
            yield chunk


def copy_image(source: Engine, target: Engine, reference: str, chunk_size: int = CHUNK_SIZE) -> int:
    """Stream `reference` (a name:tag, which travels with the image, or an id) from `source` to `target`.

    Returns the number of bytes moved. The image keeps its id on the target: the id is the digest of its
    configuration, which the tar carries.
    """
    counter = [0]
    with target.errors(f"Loading {reference}"):
        events = target.api.load_image(_saved(source, reference, chunk_size, counter))
        for line in events or []:
            event = line if isinstance(line, dict) else json.loads(line)
            if event.get("error"):
                raise EngineError(f"Loading {reference} on {target.where}: {event['error']}")
    return counter[0]
