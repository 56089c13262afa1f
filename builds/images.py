"""Image records: what the engine says of an image a user built or pulled, with its layer history."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.db import transaction
from django.utils.dateparse import parse_datetime

from builds.buildservice import mask_secrets
from builds.constants import ImageOrigin
from builds.models import Build, Image, Layer
from console.engine import Engine
from console.engine.images import image_history, inspect_image

# The diff_id of a layer that changes no file: the sha256 of an empty tar (two zero blocks).
EMPTY_LAYER_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
COMMITTING_INSTRUCTIONS = ("COPY", "ADD", "RUN", "WORKDIR")


def image_config(config: dict) -> dict:
    """The parts of an image's config users look at, in the console's field names."""
    config = config or {}
    return {
        "env": config.get("Env") or [],
        "cmd": config.get("Cmd"),
        "entrypoint": config.get("Entrypoint"),
        "user": config.get("User") or "",
        "workdir": config.get("WorkingDir") or "",
        "exposed_ports": sorted((config.get("ExposedPorts") or {}).keys()),
        "volumes": sorted((config.get("Volumes") or {}).keys()),
        "healthcheck": config.get("Healthcheck"),
    }


def _commits_files(created_by: str) -> bool:
    if "#(nop)" not in created_by:
        return True
    instruction = created_by.split("#(nop)", 1)[1].strip().split(" ", 1)[0].upper()
    return instruction in COMMITTING_INSTRUCTIONS


def layers_from_history(history: list[dict], diff_ids: list[str]) -> list[dict]:
    """History entries, oldest first, each with the diff_id of the layer it made (empty ones have none)."""
    layers, remaining = [], list(diff_ids)
    entries = list(reversed(history))
    for index, entry in enumerate(entries):
        created_by = entry.get("CreatedBy") or ""
        size = int(entry.get("Size") or 0)
        entries_left = len(entries) - index
        takes_layer = bool(remaining) and (
            size > 0
            or len(remaining) >= entries_left
            or (remaining[0] == EMPTY_LAYER_DIFF_ID and _commits_files(created_by))
        )
        diff_id = remaining.pop(0) if takes_layer else ""
        created = entry.get("Created")
        layers.append({
            "index": index,
            "history_id": entry.get("Id") or "",
            "diff_id": diff_id,
            "created_by": created_by,
            "size": size,
            "empty_layer": not takes_layer,
            "created": datetime.fromtimestamp(created, tz=UTC) if created else None,
        })
    return layers


def record_image(owner, engine: Engine, reference: str, origin: str, build: Build | None = None,
                 repository=None, secrets: dict[str, str] | None = None) -> Image:
    """Create or refresh the owner's record of an image on the build engine, with its layers.

    `secrets` are masked in the layers' instructions: the classic builder writes build args into the
    history (`|1 TOKEN=value /bin/sh -c ...`).
    """
    details = inspect_image(engine, reference)
    history = image_history(engine, reference)
    for entry in history:
        entry["CreatedBy"] = mask_secrets(entry.get("CreatedBy") or "", secrets or {})
    layers = layers_from_history(history, (details.get("RootFS") or {}).get("Layers") or [])
    steps = {step.layer_id: step for step in build.steps.exclude(layer_id="")} if build else {}
    with transaction.atomic():
        image, _ = Image.objects.update_or_create(
            owner=owner,
            image_id=details["Id"],
            defaults={
                "tags": details.get("RepoTags") or [],
                "digests": details.get("RepoDigests") or [],
                "size": details.get("Size") or 0,
                "created": parse_datetime(details["Created"]) if details.get("Created") else None,
                "architecture": details.get("Architecture") or "",
                "os": details.get("Os") or "",
                "labels": (details.get("Config") or {}).get("Labels") or {},
                "config": image_config(details.get("Config") or {}),
                "origin": origin,
                **({"build": build, "repository": build.repository} if build else {}),
                **({"repository": repository} if repository and not build else {}),
            },
        )
        image.layers.all().delete()
        Layer.objects.bulk_create(
            Layer(
                image=image,
                index=layer["index"],
                diff_id=layer["diff_id"],
                created_by=layer["created_by"],
                size=layer["size"],
                empty_layer=layer["empty_layer"],
                created=layer["created"],
                build_step=steps.get(layer["history_id"].removeprefix("sha256:")[:12]),
            )
            for layer in layers
        )
    return image


def record_built_image(build: Build, engine: Engine, image_id: str) -> Image:
    secrets = json.loads(build.secret_build_args) if build.secret_build_args else {}
    return record_image(build.owner, engine, image_id, ImageOrigin.BUILT, build=build, secrets=secrets)
