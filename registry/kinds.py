"""What each kind of registry account means: the names images carry, where the engine authenticates, where the
Registry HTTP API answers. Users type as little as possible; this module fills in the rest and checks it."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from registry.constants import DOCKERHUB_API, DOCKERHUB_AUTH, DOCKERHUB_INDEX, GCR_USERNAME, RegistryKind

# Fixed hosts of the public registries; Google also serves regional hosts of the same registry.
FIXED_HOSTS = {
    RegistryKind.QUAY: ("quay.io",),
    RegistryKind.GCR: ("gcr.io", "us.gcr.io", "eu.gcr.io", "asia.gcr.io"),
    RegistryKind.GHCR: ("ghcr.io",),
}


@dataclass(frozen=True)
class Endpoint:
    """The three addresses of one registry.

    `index` prefixes image references (`quay.io/team/app:1`); `auth_server` is the `serveraddress` of the engine's
    auth config (what `docker login` stores); `api_url` is the base of the Registry HTTP API v2.
    """

    index: str
    auth_server: str
    api_url: str

    @property
    def insecure(self) -> bool:
        return self.api_url.startswith("http://")

    def reference(self, repository: str) -> str:
        """The repository as the engine names it: `<index>/<repository>`."""
        return f"{self.index}/{repository}"


def normalise(kind: str, url: str, username: str) -> tuple[str, str]:
    """The `url` and `username` to store for an account of `kind`; raises ValidationError naming the field."""
    url, username = (url or "").strip(), (username or "").strip()
    if kind == RegistryKind.DOCKERHUB:
        return DOCKERHUB_INDEX, username
    if kind in FIXED_HOSTS:
        hosts = FIXED_HOSTS[kind]
        host = _host_of(url) if url else hosts[0]
        if host not in hosts:
            raise ValidationError({"url": f"A {RegistryKind(kind).label} account lives on {', '.join(hosts)}."})
        if kind == RegistryKind.GCR:
            # Google accepts a service account's JSON key as the password of the fixed user `_json_key`.
            username = username or GCR_USERNAME
        return host, username
    if kind == RegistryKind.GENERIC:
        return _generic_url(url), username
    if kind == RegistryKind.CONSOLE:
        return settings.REGISTRY_ADDRESS, username
    raise ValidationError({"kind": f"Unknown kind {kind!r}."})


def endpoint(kind: str, url: str) -> Endpoint:
    """The addresses of a stored account (its `url` already normalised)."""
    if kind == RegistryKind.DOCKERHUB:
        return Endpoint(index=DOCKERHUB_INDEX, auth_server=DOCKERHUB_AUTH, api_url=DOCKERHUB_API)
    if kind in FIXED_HOSTS:
        return Endpoint(index=url, auth_server=url, api_url=f"https://{url}")
    if kind == RegistryKind.CONSOLE:
        address = settings.REGISTRY_ADDRESS
        scheme = "http" if _is_loopback(address) else "https"
        return Endpoint(index=address, auth_server=address, api_url=f"{scheme}://{address}")
    parts = urlsplit(url)
    return Endpoint(index=parts.netloc, auth_server=parts.netloc, api_url=f"{parts.scheme}://{parts.netloc}")


def _host_of(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"https://{url}")
    return (parts.hostname or "").lower()


def _is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 else address
    return host == "localhost" or host.startswith("127.")


def _generic_url(url: str) -> str:
    """`https://host[:port]` from what a user typed: a bare host, a URL, or a URL ending in /v2/."""
    if not url:
        raise ValidationError({"url": "A generic registry needs its URL, such as https://registry.example.com."})
    candidate = url if "://" in url else f"https://{url}"
    try:
        parts = urlsplit(candidate)
        port = parts.port
    except ValueError:
        raise ValidationError({"url": f"{url!r} is not a URL."}) from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError({"url": "Use an http:// or https:// URL."})
    if not parts.hostname:
        raise ValidationError({"url": f"{url!r} names no host."})
    if parts.username or parts.password:
        raise ValidationError({"url": "Put the username and password in their own fields, not in the URL."})
    if parts.path.strip("/") not in ("", "v2") or parts.query or parts.fragment:
        raise ValidationError({"url": "Give the registry's root URL: the Registry API lives at /v2/ under it."})
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return f"{parts.scheme}://{netloc}"
