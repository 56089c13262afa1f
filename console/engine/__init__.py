"""The engine wrapper: the only package of the console that imports `docker`.

`core` holds the connection (`Engine`) and the error translation; each other module adds the operations of
one area as functions taking an `Engine` (builds, images, registries, containers), so that the areas grow
apart without one file holding them all.
"""

from console.engine.core import (
    Engine,
    EngineBadRequest,
    EngineConflict,
    EngineError,
    EngineNotFound,
    EngineRefused,
    EngineUnavailable,
    SSHMaterial,
    TLSMaterial,
    load_ssh_private_key,
    parse_ssh_host_key,
    ssh_fingerprint,
    ssh_host_key_line,
    translate_errors,
)

__all__ = [
    "Engine",
    "EngineBadRequest",
    "EngineConflict",
    "EngineError",
    "EngineNotFound",
    "EngineRefused",
    "EngineUnavailable",
    "SSHMaterial",
    "TLSMaterial",
    "load_ssh_private_key",
    "parse_ssh_host_key",
    "ssh_fingerprint",
    "ssh_host_key_line",
    "translate_errors",
]
