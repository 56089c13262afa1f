"""One POST of a webhook delivery, to the address the console's outbound rules allowed at that very moment.

The name is resolved and checked (console/netpolicy.py, the webhook purpose) at every attempt, and the connection
goes to the address that check returned, not to a second resolution: a name that answers a public address when
the webhook is saved and 127.0.0.1 later (DNS rebinding) is refused then. HTTPS still checks the certificate
against the name. Redirects are not followed (a 3xx is a failed attempt), no proxy from the environment is used,
and only the first bytes of the answer are read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3
from urllib3.exceptions import HTTPError

from console import netpolicy

ANSWER_READ_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """What one attempt met: the HTTP status (None: no answer), an error in words, its duration."""

    status: int | None
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(url: str, body: bytes, headers: dict[str, str], *, user, timeout: float) -> Answer:
    started = time.monotonic()

    def answer(status: int | None, error: str) -> Answer:
        return Answer(status, error[:500], int((time.monotonic() - started) * 1000))

    try:
        parts = urlsplit(url)
        host, scheme = parts.hostname or "", parts.scheme.lower()
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        return answer(None, f"The URL is not valid: {exc}.")
    if scheme not in ("http", "https"):
        return answer(None, "Only http and https URLs can be webhooks.")
    try:
        addresses = netpolicy.resolve_checked(host, port, user=user, purpose=netpolicy.WEBHOOK)
    except netpolicy.DestinationRefused as exc:
        return answer(None, str(exc))
    address = str(addresses[0])
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if scheme == "https" else 80
    host_header = host if port == default_port else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        host_header = f"[{host}]" if port == default_port else f"[{host}]:{port}"
    pool_timeout = urllib3.Timeout(connect=timeout, read=timeout)
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(address, port, timeout=pool_timeout, maxsize=1, retries=False,
                                           cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(),
                                           server_hostname=host, assert_hostname=host)
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=pool_timeout, maxsize=1, retries=False)
    try:
        response = pool.urlopen("POST", path, body=body, headers={**headers, "Host": host_header},
                                redirect=False, retries=False, preload_content=False, assert_same_host=False)
        try:
            response.read(ANSWER_READ_LIMIT)
        finally:
            response.release_conn()
    except (HTTPError, OSError) as exc:
        # Words of the console's own, never what the destination answered.
        return answer(None, f"No answer: {type(exc).__name__}.")
    finally:
        pool.close()
    status = response.status
    if 300 <= status < 400:
        return answer(status, f"The webhook answered a redirect ({status}), which the console does not follow.")
    if not 200 <= status < 300:
        return answer(status, f"The webhook answered {status}.")
    return answer(status, "")
