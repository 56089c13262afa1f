"""The bytes a folder holds on disk: what a git clone wrote so far (builds/sources/git.py) and what a registry
garbage collection freed (registry/services/gc.py) are both measured with it."""

from __future__ import annotations

import os
from pathlib import Path


def folder_bytes(root: Path) -> int:
    """The bytes of every file under `root`, links counted as links; a file that vanishes meanwhile (git renames
    and removes its temporary files while it works) counts for nothing."""
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total
