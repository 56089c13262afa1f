"""Memory sizes and CPU shares as the Docker CLI reads them (`--memory 512m`, `--cpus 0.5`): one reading for build
options, deployments and settings. Callers keep their own messages and minimums; this says only whether the text
is a size at all."""

from __future__ import annotations

import math
import re

# go-units' RAMInBytes: a decimal number, an optional binary unit (b, k, m, g, t, p) and an optional `b`, any case.
MEMORY_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([bkmgtp]?)b?\s*\Z", re.IGNORECASE | re.ASCII)
MEMORY_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
# The engine refuses a container (or a build step) with less than 6 MB.
MINIMUM_MEMORY = 6 * 1024**2
# Text longer than this is no size anyone means (and is not worth matching).
MAX_TEXT = 64


class UnitError(ValueError):
    """The value is not a size or a CPU share at all."""


def parse_memory(value: str | int) -> int:
    """Bytes from `512m`, `1g`, `1.5g`, `300000k`, `64mb` or a number of bytes (an int is taken as bytes).

    Raises UnitError when it is none of these; whether it is enough is the caller's rule."""
    if isinstance(value, bool):
        raise UnitError(f"{value!r} is not a memory size")
    if isinstance(value, int):
        if value < 0:
            raise UnitError(f"{value!r} is not a memory size")
        return value
    text = str(value)
    match = MEMORY_RE.match(text) if len(text) <= MAX_TEXT else None
    if match is None:
        raise UnitError(f"{value!r} is not a memory size")
    return int(float(match.group(1)) * MEMORY_UNITS[match.group(2).lower()])


def parse_cpus(value: str | int | float) -> float:
    """A CPU share like `0.5` or `2` (`docker run --cpus`). Raises UnitError for anything that is not a finite,
    non-negative number (a JSON `true` is not one); the range is the caller's rule."""
    if isinstance(value, bool):
        raise UnitError(f"{value!r} is not a number of CPUs")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise UnitError("The number of CPUs is too long")
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        raise UnitError(f"{value!r} is not a number of CPUs") from None
    if not math.isfinite(cpus) or cpus < 0:
        raise UnitError(f"{value!r} is not a number of CPUs")
    return cpus
