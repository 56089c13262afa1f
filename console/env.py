"""Reading settings from the environment: safe development defaults, loud failures on malformed values.

Every secret may also come from a file named by `NAME_FILE` (the way container orchestrators mount secrets).
Secrets that are absent in development are generated once into the data folder, so that a restart keeps
sessions and encrypted values readable.

Files at rest are the owner's alone: the data folder is 0700, generated secrets and the SQLite database 0600
(they hold session keys, deployment environments, encryption keys). Modes are set when the files are made and
tightened on every start for files an older version left readable.
"""

from __future__ import annotations

import os
import secrets
import stat
import warnings
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def envstr(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use one of {sorted(TRUE_WORDS | FALSE_WORDS)}")


def envint(name: str, default: int, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def envlist(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def envsecret(name: str) -> str | None:
    """The value of NAME, or the contents of the file named by NAME_FILE; None when neither is set."""
    if name in os.environ:
        return os.environ[name]
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc.strerror}") from None
    return None


PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def _tighten(path: Path, mode: int) -> None:
    """Take group and other permissions away from `path` (ours); a warning when it is not ours to change."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
        if current & 0o077:
            os.chmod(path, current & mode)
    except PermissionError:
        warnings.warn(f"{path} is readable by other users and not ours to change: chmod {mode:o} it", stacklevel=3)


def private_dir(path: Path) -> Path:
    """`path` as a folder only its owner may enter (0700), made with its missing parents if need be."""
    if not path.exists():
        # The mode applies to the last folder; parents get the process's umask, as `mkdir -p` gives them.
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    _tighten(path, PRIVATE_DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """`path` as a file only its owner may read (0600): created empty when missing (an empty file is a valid,
    empty SQLite database, which SQLite then fills and whose journals it gives the same mode)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        _tighten(path, PRIVATE_FILE_MODE)
    return path


def generated_secret(data_dir: Path, filename: str, make) -> str:
    """A secret kept in the data folder, made by `make()` the first time it is asked for."""
    path = data_dir / filename
    if path.exists():
        _tighten(path, PRIVATE_FILE_MODE)
        return path.read_text().strip()
    private_dir(data_dir)
    value = make()
    # Written with owner-only permissions before the value goes in.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def random_key() -> str:
    return secrets.token_urlsafe(50)
