"""Which network destinations the console may reach on a user's behalf.

Anyone may sign up, so an address a user gives (a fleet host, a git URL, a registry, a webhook, a URL in a
Dockerfile) may aim at the console's own machine: its engine socket, its database, its registry, a service on
loopback. One function answers "may this user make the console connect there", for every feature:

- `check_destination(host, port, user=..., purpose=...)` resolves the name and refuses any address that is
  loopback, link-local, unspecified or multicast, one of this machine's own addresses, or the address of one of
  the console's own services (the build engine, the console's registry, the database, the broker, and what apps
  add with `register_service_urls`: builds adds its build nodes' engines) — unless the user is staff and the
  purpose lets staff through, or an operator allowed that network by setting (`OUTBOUND_ALLOWED_NETWORKS`).
- `check_url(url, ...)` does the same for a URL.

Private ranges (10/8, 172.16/12, 192.168/16) are allowed: that is where users' own Docker hosts and registries
live. A webhook is different: the console POSTs there by itself whenever an event happens, with nothing of the
user's to connect to, so its purpose refuses private (and shared, 100.64/10) addresses too.

Refusals raise `DestinationRefused`, whose message names the address class and never echoes anything the
destination answered.

A name is resolved once here and again by whoever connects, so a DNS name that changes its answer in between
(rebinding) is not caught by this check alone; callers that connect themselves should use
`resolve_checked(...)` and connect to the address it returns.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from console.errors import DomainError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# How long the list of this machine's own addresses is trusted before it is read again.
_OWN_ADDRESSES_TTL = 30.0
_own_cache: tuple[float, frozenset[IPAddress]] = (0.0, frozenset())
SIOCGIFADDR = 0x8915


class DestinationRefused(DomainError, ValueError):
    """The console will not connect there for this user; the message says why, fit to show."""


@dataclass(frozen=True)
class Purpose:
    """What the connection is for: the words used in refusals, and whether staff may go anywhere."""

    noun: str
    staff_exempt: bool = True
    # Also refuse private and shared (carrier-grade NAT) ranges, for connections no user's own machine needs.
    refuse_private: bool = False


HOST = Purpose("Docker host")
GIT = Purpose("git repository")
REGISTRY = Purpose("registry")
BUILD_URL = Purpose("URL in a Dockerfile")
WEBHOOK = Purpose("webhook", refuse_private=True)


def _interface_ipv4() -> set[IPAddress]:
    found: set[IPAddress] = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                answer = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, request)
            except OSError:
                # An interface without an IPv4 address.
                continue
            found.add(ipaddress.IPv4Address(answer[20:24]))
    return found


def _interface_ipv6() -> set[IPAddress]:
    found: set[IPAddress] = set()
    try:
        with open("/proc/net/if_inet6") as table:
            for line in table:
                found.add(ipaddress.IPv6Address(bytes.fromhex(line.split()[0])))
    except OSError:
        pass
    return found


def own_addresses(fresh: bool = False) -> frozenset[IPAddress]:
    """This machine's own addresses, on every interface (read again every half minute, or when `fresh`)."""
    global _own_cache
    read_at, addresses = _own_cache
    if fresh or time.monotonic() - read_at > _OWN_ADDRESSES_TTL:
        addresses = frozenset(_interface_ipv4() | _interface_ipv6())
        _own_cache = (time.monotonic(), addresses)
    return addresses


def _is_own(address: IPAddress) -> bool:
    # An interface made since the last reading (a new bridge, a veth) must count at once: read again on a miss.
    return address in own_addresses() or address in own_addresses(fresh=True)


def _host_of(url: str) -> str:
    if not url or url.startswith(("unix:", "npipe:", "fd:")):
        return ""
    if "://" not in url:
        url = f"tcp://{url}"
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


# Apps that run services of their own add them here (builds: its build nodes' engines, in BuildsConfig.ready()):
# each callable returns the URLs of those services, read anew on every check; this module imports no app above it.
_service_url_providers: list[Callable[[], Iterable[str]]] = []


def register_service_urls(provider: Callable[[], Iterable[str]]) -> None:
    """Count the hosts of the URLs `provider()` returns among the console's own services (once per provider)."""
    if provider not in _service_url_providers:
        _service_url_providers.append(provider)


def service_hosts() -> set[str]:
    """The host names of the console's own services, as its settings and the registered providers name them."""
    urls = [settings.DOCKER_HOST or "", f"//{settings.REGISTRY_ADDRESS}", getattr(settings, "CELERY_BROKER_URL", "")]
    database = settings.DATABASES["default"]
    hosts = {_host_of(url) for url in urls}
    hosts.add(database.get("HOST") or "")
    for provider in _service_url_providers:
        hosts.update(_host_of(url) for url in provider())
    return {host for host in hosts if host}


def _service_addresses() -> set[IPAddress]:
    found: set[IPAddress] = set()
    for host in service_hosts():
        try:
            found.update(_resolve(host))
        except DestinationRefused:
            continue
    return found


def allowed_networks() -> list[Network]:
    return [ipaddress.ip_network(item, strict=False) for item in getattr(settings, "OUTBOUND_ALLOWED_NETWORKS", [])]


def _resolve(host: str, port: int | None = None) -> list[IPAddress]:
    host = host.strip("[]")
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        answers = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise DestinationRefused(f"The name {host!r} does not resolve.") from exc
    # An IPv6 answer may carry a zone (fe80::1%eth0): the address is what counts.
    return [ipaddress.ip_address(str(answer[4][0]).split("%", 1)[0]) for answer in answers]


def address_class(address: IPAddress) -> str:
    """Why an address is the console's own (a phrase), or "" for an address anyone may reach."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address_class(address.ipv4_mapped)
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast or address.is_reserved:
        return "a reserved address"
    if _is_own(address):
        return "an address of the console's own machine"
    if address in _service_addresses():
        return "the address of one of the console's own services"
    return ""


_SHARED = ipaddress.ip_network("100.64.0.0/10")


def _private_class(address: IPAddress) -> str:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_private or (address.version == 4 and address in _SHARED):
        return "a private address"
    return ""


def _allowed(address: IPAddress, networks: Iterable[Network]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address.version == network.version and address in network for network in networks)


def resolve_checked(host: str, port: int | None = None, *, user=None, purpose: Purpose = HOST) -> list[IPAddress]:
    """The addresses `host` resolves to, after checking every one of them; raises DestinationRefused."""
    if not host:
        raise DestinationRefused(f"The {purpose.noun} needs a host name or address.")
    addresses = _resolve(host, port)
    if user is not None and purpose.staff_exempt and getattr(user, "is_staff", False):
        return addresses
    networks = allowed_networks()
    for address in addresses:
        reason = address_class(address) or (_private_class(address) if purpose.refuse_private else "")
        if reason and not _allowed(address, networks):
            raise DestinationRefused(
                f"The {purpose.noun} {host!r} is {reason}, which only staff may use on this console."
            )
    return addresses


def check_destination(host: str, port: int | None = None, *, user=None, purpose: Purpose = HOST) -> None:
    resolve_checked(host, port, user=user, purpose=purpose)


def check_url(url: str, *, user=None, purpose: Purpose = HOST) -> None:
    """Check the host a URL names (http, https, tcp, ssh, git...); unix sockets and files are the machine's own."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("unix", "npipe", "fd", "file"):
        if user is not None and purpose.staff_exempt and getattr(user, "is_staff", False):
            return
        raise DestinationRefused(
            f"A {scheme}:// {purpose.noun} is on the console's own machine: only staff may use it."
        )
    try:
        parts = urlsplit(url if "://" in url else f"//{url}")
        host, port = parts.hostname or "", parts.port
    except ValueError as exc:
        raise DestinationRefused(f"{url!r} is not a URL the console can use: {exc}.") from exc
    check_destination(host, port, user=user, purpose=purpose)


def refused_reason(url: str, *, user=None, purpose: Purpose = HOST) -> str:
    """The refusal message for `url`, or "" when it is allowed."""
    try:
        check_url(url, user=user, purpose=purpose)
    except DestinationRefused as exc:
        return str(exc)
    return ""
