"""The rows of a file tree for the source page: folders with their sizes, files with why they are left out."""

from __future__ import annotations

from dataclasses import dataclass

from builds.sources.archives import DIR
from builds.sources.context import ContextFile


@dataclass
class TreeRow:
    path: str
    name: str
    depth: int
    is_folder: bool
    size: int = 0
    sent_size: int = 0
    sent: bool = True
    pattern: str | None = None
    kind: str = ""


def file_tree_rows(files: list[ContextFile]) -> list[TreeRow]:
    """Depth-first rows: each folder (with the bytes under it, and how many of them are sent) then its files."""
    folders: dict[str, TreeRow] = {}
    rows: dict[str, TreeRow] = {}
    for item in files:
        parts = item.path.split("/")
        for depth in range(len(parts) - (0 if item.kind == DIR else 1)):
            folder = "/".join(parts[: depth + 1])
            if folder not in folders:
                folders[folder] = TreeRow(folder, parts[depth], depth, True, sent=False)
        if item.kind == DIR:
            row = folders[item.path]
            row.pattern = row.pattern or item.pattern
            continue
        rows[item.path] = TreeRow(item.path, parts[-1], len(parts) - 1, False, item.size,
                                  item.size if item.sent else 0, item.sent, item.pattern, item.kind)
        for depth in range(len(parts) - 1):
            folder = folders["/".join(parts[: depth + 1])]
            folder.size += item.size
            if item.sent:
                folder.sent_size += item.size
                folder.sent = True
    every = {**folders, **rows}
    # Sorting by path parts puts each folder right before what it holds.
    return [every[key] for key in sorted(every, key=lambda p: p.split("/"))]
