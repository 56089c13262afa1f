"""Pushing and pulling images: the engine talks to the registry, with credentials given in the SDK's
auth_config (the X-Registry-Auth header), never on a command line nor in a file.

The engine streams JSON lines: per-layer progress (`{"id", "status", "progressDetail": {"current", "total"}}`),
plain status lines, `aux` with the pushed digest, and `errorDetail` when it fails; `stream` yields them as
dicts and raises EngineError on the first error line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from console.engine.core import Engine, EngineError


def _checked(lines: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if "errorDetail" in line or "error" in line:
            detail = line.get("errorDetail") or {}
            raise EngineError(str(detail.get("message") or line.get("error") or "the engine reported an error"))
        yield line


def push(engine: Engine, repository: str, tag: str, auth_config: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Push `repository:tag` (already tagged so on the engine); yields the engine's progress lines."""
    with engine.errors(f"Pushing {repository}:{tag}"):
        lines = engine.api.push(repository, tag=tag, auth_config=auth_config or None, stream=True, decode=True)
        yield from _checked(lines)


def pull(engine: Engine, repository: str, reference: str, auth_config: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Pull `repository` at `reference` (a tag or a `sha256:` digest); yields the engine's progress lines."""
    with engine.errors(f"Pulling {repository}"):
        lines = engine.api.pull(
            repository, tag=reference, auth_config=auth_config or None, stream=True, decode=True
        )
        yield from _checked(lines)


def inspect_image(engine: Engine, reference: str) -> dict[str, Any]:
    with engine.errors(f"Inspecting image {reference}"):
        return engine.api.inspect_image(reference)


def remove_tag(engine: Engine, reference: str) -> None:
    """Drop one name of an image (the layers stay while another name or a container uses them)."""
    with engine.errors(f"Removing the tag {reference}"):
        engine.api.remove_image(reference, noprune=True)
