"""The console's own registry: the config.yml of Debian's `docker-registry` (CNCF Distribution 2.8) that
trusts the console's token endpoint, and the signing material it checks tokens with."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urljoin

from django.conf import settings

from registry.notifications import notification_secret
from registry.tokens import CERT_FILE, ensure_signing_material

CONFIG_FILE = "config.yml"
# The same registry, refusing every write: what it serves during garbage collection (registry/maintenance.py).
READ_ONLY_CONFIG_FILE = "config-readonly.yml"
# On SIGTERM (a switch to or from read-only), uploads in flight get this long to finish.
DRAIN_TIMEOUT = "30s"


def notifications_url() -> str:
    """Where the registry posts its notifications: the setting, or the token realm's neighbour."""
    if settings.REGISTRY_NOTIFICATIONS_URL:
        return settings.REGISTRY_NOTIFICATIONS_URL
    return urljoin(settings.REGISTRY_TOKEN_REALM, "/registry/notifications/")


def notifications_endpoint(url: str, secret: str) -> dict:
    """The `notifications` section: every manifest push and every delete, posted to the console with its secret.
    Blob events and pulls are not sent (they are not events the console records)."""
    return {
        "events": {"includereferences": True},
        "endpoints": [{
            "name": "console",
            "url": url,
            "headers": {"Authorization": [f"Bearer {secret}"]},
            "timeout": "5s",
            "threshold": 5,
            "backoff": "2s",
            "ignore": {"mediatypes": ["application/octet-stream"], "actions": ["pull"]},
        }],
    }


def token_config(directory: Path, address: str, realm: str, service: str, issuer: str,
                 notifications: dict | None = None, *, read_only: bool = False) -> str:
    """config.yml for a registry on `address` storing under `directory/data`, trusting tokens from `realm`, and
    posting its notifications as `notifications` (a section from notifications_endpoint) says; `read_only` is
    Distribution's maintenance mode, in which every write is refused.

    Written as JSON, which is YAML too: every value is quoted as it should be whatever it holds.
    """
    config = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text"},
        "storage": {
            "filesystem": {"rootdirectory": str(directory / "data")},
            "delete": {"enabled": True},
        },
        "http": {"addr": address, "headers": {"X-Content-Type-Options": ["nosniff"]}, "draintimeout": DRAIN_TIMEOUT},
        "auth": {
            "token": {
                "realm": realm,
                "service": service,
                "issuer": issuer,
                "rootcertbundle": str(directory / CERT_FILE),
            }
        },
    }
    if notifications:
        config["notifications"] = notifications
    if read_only:
        config["storage"]["maintenance"] = {"readonly": {"enabled": True}}
    return json.dumps(config, indent=2) + "\n"


def write_config(directory: Path | None = None) -> tuple[Path, bool]:
    """Write the signing key, its certificate, config.yml and config-readonly.yml for the settings' registry;
    idempotent.

    Returns the config's path and whether anything changed (a second run with the same settings changes nothing).
    """
    directory = Path(directory or settings.REGISTRY_DIR)
    changed = ensure_signing_material(directory)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    for name, read_only in ((CONFIG_FILE, False), (READ_ONLY_CONFIG_FILE, True)):
        text = token_config(
            directory,
            settings.REGISTRY_ADDRESS,
            settings.REGISTRY_TOKEN_REALM,
            settings.REGISTRY_SERVICE,
            settings.REGISTRY_ISSUER,
            notifications_endpoint(notifications_url(), notification_secret()),
            read_only=read_only,
        )
        path = directory / name
        if not path.exists() or path.read_text() != text:
            # It holds the notifications' secret: readable by the console's own user only.
            path.touch(mode=0o600, exist_ok=True)
            path.chmod(0o600)
            path.write_text(text)
            changed = True
    return directory / CONFIG_FILE, changed
