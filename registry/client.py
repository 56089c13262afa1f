"""A small client of the Registry HTTP API v2 that answers each registry's own challenge.

A request goes out without credentials; a 401 names the scheme in `WWW-Authenticate`: `Basic` is answered with
the account's username and secret, `Bearer realm=,service=,scope=` by fetching a token from that realm (with the
credentials as Basic auth, as `docker login` does) and repeating the request with it.

Every request is an outbound connection on a user's behalf (console/netpolicy.py, purpose REGISTRY): the URL of
each request, the token realm a registry names and every redirect hop are checked before the console connects,
unless the client is for the console's own registry (`trusted`). Redirects are followed by hand, at most
MAX_REDIRECTS, and credentials go only to the origin they were given for. Errors are fixed sentences by class
(refused, timed out, TLS, not a registry, credentials refused): never what the other side answered, which could
be an internal service's words. Messages never hold the secret.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings

from console import netpolicy

log = logging.getLogger(__name__)

# `Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"`
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
# `/v2/<name>/tags/list`, `/v2/<name>/manifests/<reference>`, `/v2/<name>/blobs/<digest>`.
_REPOSITORY_PATH = re.compile(r"/v2/(?P<name>.+)/(?:tags|manifests|blobs)/[^/]+\Z")
MAX_REDIRECTS = 5
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# What a Distribution-compatible registry says about itself on every answer of its API.
API_VERSION_HEADER = "Docker-Distribution-API-Version"

CREDENTIALS_REFUSED = "The registry refused these credentials."
TOKEN_REFUSED = "The registry's token service refused these credentials."
NOT_A_REGISTRY = "{base} answered, but is not a Docker registry (no /v2/ API)."
NEEDS_CREDENTIALS = "The registry asks for a username and password."
UNKNOWN_AUTH = "The registry asks for a kind of authentication the console does not speak."


class RegistryHTTPError(Exception):
    """The registry answered, but not with what was asked; the message says why, in the console's words."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RegistryUnreachable(RegistryHTTPError):
    """No answer at all: a wrong address, a registry that is down, or TLS that cannot be verified."""


class RegistryRefused(RegistryHTTPError):
    """The console will not connect there for this user (netpolicy); the message says why."""


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """The scheme and parameters of a `WWW-Authenticate` header."""
    scheme, _, rest = header.strip().partition(" ")
    params = {key.lower(): quoted if quoted or not bare else bare for key, quoted, bare in _PARAM.findall(rest)}
    return scheme.lower(), params


def status_message(response: requests.Response, base: str) -> str:
    """A fixed sentence for a failed answer, by its class: the body is never shown."""
    code = response.status_code
    if code in (401, 403):
        return CREDENTIALS_REFUSED
    if code == 404 or API_VERSION_HEADER not in response.headers:
        return NOT_A_REGISTRY.format(base=base)
    if code >= 500:
        return f"The registry at {base} failed to answer (HTTP {code}): try again later."
    return f"The registry at {base} did not accept the request (HTTP {code})."


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


# Given the parameters of a Bearer challenge, a token for them (or raise RegistryHTTPError).
TokenSource = Callable[[dict[str, str]], str]


class RegistryClient:
    """Requests to one registry's API with one set of credentials; tokens are kept per scope while it lives."""

    def __init__(
        self,
        api_url: str,
        username: str = "",
        secret: str = "",
        ca_certificate: str = "",
        token_source: TokenSource | None = None,
        *,
        user=None,
        trusted: bool = False,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.user = user
        # The console's own registry: reached with a token the console signs, whatever the network policy says.
        self.trusted = trusted
        self.username = username
        self.secret = secret
        self.ca_certificate = ca_certificate
        self.token_source = token_source
        self.timeout = settings.REGISTRY_HTTP_TIMEOUT
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "console-registry-client"
        self._bearer: dict[str, str] = {}
        self._basic = False

    @contextlib.contextmanager
    def _verify(self) -> Iterator[bool | str]:
        if not self.ca_certificate:
            yield True
            return
        # requests wants a file: a private one, gone when the request is done.
        fd, path = tempfile.mkstemp(prefix="console-ca-", suffix=".pem")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(self.ca_certificate)
            yield path
        finally:
            os.unlink(path)

    def check(self, url: str) -> None:
        """Refuse (RegistryRefused) a URL this client's user may not have the console connect to."""
        if self.trusted:
            return
        try:
            netpolicy.check_url(url, user=self.user, purpose=netpolicy.REGISTRY)
        except netpolicy.DestinationRefused as exc:
            raise RegistryRefused(str(exc)) from None

    def _send(self, url: str, headers: dict[str, str], auth=None, params=None, method: str = "GET"
              ) -> requests.Response:
        """Send `method` to `url`, following redirects by hand: each hop is checked, credentials stay with their
        origin. A redirected DELETE stays a DELETE (only a 303 turns a request into a GET)."""
        origin = _origin(url)
        for _hop in range(MAX_REDIRECTS + 1):
            self.check(url)
            response = self._send_once(method, url, headers, auth, params)
            if response.status_code not in REDIRECT_STATUSES or not response.headers.get("Location"):
                return response
            url = urljoin(url, response.headers["Location"])
            if response.status_code == 303:
                method = "GET"
            # The query is in the new location already; credentials are for the origin they were given to.
            params = None
            if _origin(url) != origin:
                headers, auth = {}, None
        raise RegistryUnreachable(f"{self.api_url} redirects more than {MAX_REDIRECTS} times.")

    def _send_once(self, method: str, url: str, headers: dict[str, str], auth, params) -> requests.Response:
        where = url.split("?")[0]
        try:
            with self._verify() as verify:
                return self._session.request(method, url, headers=headers, auth=auth, params=params,
                                             timeout=self.timeout, verify=verify, allow_redirects=False)
        except requests.exceptions.SSLError:
            raise RegistryUnreachable(
                f"The TLS certificate of {self.api_url} cannot be verified: add its CA certificate."
            ) from None
        except requests.exceptions.Timeout:
            raise RegistryUnreachable(f"{where} did not answer in {self.timeout} seconds.") from None
        except requests.exceptions.RequestException as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else "no connection"
            raise RegistryUnreachable(f"{where} does not answer ({reason}).") from None

    def request(self, method: str, path: str, params: dict | None = None, headers: dict[str, str] | None = None
                ) -> requests.Response:
        """Send `method` to `path` under /v2/, authenticating as the registry asks; raises RegistryHTTPError
        unless 2xx. `headers` are the caller's own (Accept, say), sent with every try."""
        url = f"{self.api_url}{path}"
        extra = dict(headers or {})
        response = self._send(url, {**extra, **self._headers_for(method, path)}, self._basic_auth(), params, method)
        if response.status_code == 401:
            self._answer_challenge(response.headers.get("WWW-Authenticate", ""), method, path)
            response = self._send(url, {**extra, **self._headers_for(method, path)}, self._basic_auth(), params,
                                  method)
        if not response.ok:
            raise RegistryHTTPError(status_message(response, self.api_url), response.status_code)
        if API_VERSION_HEADER not in response.headers:
            # Whatever answered is no registry (an internal web service, say): what it said is not for the user.
            raise RegistryHTTPError(NOT_A_REGISTRY.format(base=self.api_url), response.status_code)
        return response

    def get(self, path: str, params: dict | None = None, headers: dict[str, str] | None = None
            ) -> requests.Response:
        """GET `path` under /v2/ (see `request`)."""
        return self.request("GET", path, params, headers)

    def delete(self, path: str) -> requests.Response:
        """DELETE `path` under /v2/ (see `request`): a registry asks for a token of its own for it (`delete`)."""
        return self.request("DELETE", path)

    def ping(self) -> requests.Response:
        """GET /v2/ as `docker login` does."""
        return self.get("/v2/")

    def _basic_auth(self):
        return (self.username, self.secret) if self._basic else None

    @staticmethod
    def _token_key(method: str, path: str) -> str:
        """Which kept token a request can reuse: a registry asks one scope per repository and kind of request
        (`repository:team/app:pull` for every GET of its tags, manifests and blobs; `delete` for a DELETE), so a
        page of tags costs one token, not one per manifest. A wrong guess is answered by a new challenge."""
        match = _REPOSITORY_PATH.match(path)
        return f"{method} {match['name']}" if match else f"{method} {path}"

    def _headers_for(self, method: str, path: str) -> dict[str, str]:
        token = self._bearer.get(self._token_key(method, path))
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _answer_challenge(self, header: str, method: str, path: str) -> None:
        scheme, params = parse_challenge(header)
        if scheme == "basic":
            if not self.username and not self.secret:
                raise RegistryHTTPError(NEEDS_CREDENTIALS, 401)
            self._basic = True
        elif scheme == "bearer" and params.get("realm"):
            self._bearer[self._token_key(method, path)] = self._token(params)
        else:
            raise RegistryHTTPError(UNKNOWN_AUTH, 401)

    def _token(self, params: dict[str, str]) -> str:
        if self.token_source is not None:
            return self.token_source(params)
        query = {key: params[key] for key in ("service", "scope") if params.get(key)}
        if self.username:
            # What `docker login` sends too: lets the token service know which account the token is for.
            query["account"] = self.username
        auth = (self.username, self.secret) if self.username or self.secret else None
        response = self._send(params["realm"], {}, auth, query)
        if response.status_code in (401, 403):
            raise RegistryHTTPError(TOKEN_REFUSED, response.status_code)
        if not response.ok:
            raise RegistryHTTPError(f"The registry's token service failed (HTTP {response.status_code}).",
                                    response.status_code)
        try:
            body = response.json()
        except ValueError:
            raise RegistryHTTPError("The token service did not answer JSON.", response.status_code) from None
        if not isinstance(body, dict):
            raise RegistryHTTPError("The token service answered no token.", response.status_code)
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryHTTPError("The token service answered no token.", response.status_code)
        return token
