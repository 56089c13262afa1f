"""The installed packages in an image's files, read from the package databases its layers hold."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FoundPackage:
    """One installed package as read from the image's merged files. `layer` is the index (among the image's
    non-empty layers, in order) of the lowest layer where this package at this version appears."""

    ecosystem: str
    name: str
    version: str
    purl: str
    path: str
    layer: int | None = None
    licence: str = ""
    source_name: str = ""
    source_version: str = ""
