"""What a build node reports of its engine in each heartbeat: whether it answers, its free disk, its images."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from console.engine.core import Engine


@dataclass
class EngineFacts:
    root_dir: str = ""
    # Free bytes under the engine's data root, when that folder is on this machine (None for a remote engine).
    free_disk: int | None = None
    # name:tag of the images the engine holds that the console did not build: the base images builds start FROM.
    base_images: list[str] = field(default_factory=list)


def engine_facts(engine: Engine, built_label: str) -> EngineFacts:
    """Ask the engine for its data root and tagged images; EngineError when it does not answer."""
    with engine.errors("Reading the node's engine"):
        info = engine.api.info()
        images = engine.api.images(filters={"dangling": False})
    facts = EngineFacts(root_dir=info.get("DockerRootDir") or "")
    if facts.root_dir and os.path.isdir(facts.root_dir):
        stat = os.statvfs(facts.root_dir)
        facts.free_disk = stat.f_bavail * stat.f_frsize
    tags = set()
    for image in images:
        if built_label in (image.get("Labels") or {}):
            continue
        tags.update(tag for tag in image.get("RepoTags") or [] if tag != "<none>:<none>")
    facts.base_images = sorted(tags)
    return facts
