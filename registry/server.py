"""The console's own registry: the config.yml of Debian's `docker-registry` (CNCF Distribution 2.8) that
trusts the console's token endpoint, and the signing material it checks tokens with."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings

from registry.tokens import CERT_FILE, ensure_signing_material

CONFIG_FILE = "config.yml"


def token_config(directory: Path, address: str, realm: str, service: str, issuer: str) -> str:
    """config.yml for a registry on `address` storing under `directory/data`, trusting tokens from `realm`.

    Written as JSON, which is YAML too: every value is quoted as it should be whatever it holds.
    """
    config = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text"},
        "storage": {
            "filesystem": {"rootdirectory": str(directory / "data")},
            "delete": {"enabled": True},
        },
        "http": {"addr": address, "headers": {"X-Content-Type-Options": ["nosniff"]}},
        "auth": {
            "token": {
                "realm": realm,
                "service": service,
                "issuer": issuer,
                "rootcertbundle": str(directory / CERT_FILE),
            }
        },
    }
    return json.dumps(config, indent=2) + "\n"


def write_config(directory: Path | None = None) -> tuple[Path, bool]:
    """Write the signing key, its certificate and config.yml for the settings' registry; idempotent.

    Returns the config's path and whether anything changed (a second run with the same settings changes nothing).
    """
    directory = Path(directory or settings.REGISTRY_DIR)
    changed = ensure_signing_material(directory)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    text = token_config(
        directory,
        settings.REGISTRY_ADDRESS,
        settings.REGISTRY_TOKEN_REALM,
        settings.REGISTRY_SERVICE,
        settings.REGISTRY_ISSUER,
    )
    path = directory / CONFIG_FILE
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
        changed = True
    return path, changed
