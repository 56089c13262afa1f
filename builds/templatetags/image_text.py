"""How the image pages word an image: history entries as Dockerfile instructions (builds/history.py), the
config's commands in exec form, the efficiency and the files that waste bytes (builds/services/analysis.py)."""

from __future__ import annotations

from django import template

from builds import history
from builds.services import analysis

register = template.Library()


@register.filter
def instruction(created_by: str) -> str:
    """`/bin/sh -c #(nop)  ENV X=1` -> `ENV X=1`; `RUN /bin/sh -c make # buildkit` -> `RUN make`."""
    return history.instruction_text(created_by)


@register.filter
def exec_form(command) -> str:
    """`['sh', '-c', 'x']` -> `["sh", "-c", "x"]`, as `docker inspect` and a Dockerfile write it."""
    return history.exec_form(command)


@register.filter
def efficiency_percent(image) -> str:
    return analysis.efficiency_text(image.efficiency, image.wasted_bytes)


@register.simple_tag
def wasted_files(image, rows: list[dict]) -> dict:
    """The files that waste bytes, from the page's layer rows (their files are loaded already), and the wasted
    bytes no row explains (a file a layer's archive holds twice), so that the rows and the figure agree."""
    files = analysis.wasted_files([row["layer"] for row in rows])
    return {"files": files, "within_layers": max(0, (image.wasted_bytes or 0) - sum(row["bytes"] for row in files))}


@register.filter
def healthcheck(config_healthcheck) -> str:
    return history.healthcheck_text(config_healthcheck)


@register.filter
def file_mode(mode) -> str:
    """A file's permission bits as `ls` and chmod write them in octal: 420 -> `0644`."""
    return f"{int(mode):04o}" if isinstance(mode, int) else ""
