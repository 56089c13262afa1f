"""A small client of the Registry HTTP API v2 that answers each registry's own challenge.

A request goes out without credentials; a 401 names the scheme in `WWW-Authenticate`: `Basic` is answered with
the account's username and secret, `Bearer realm=,service=,scope=` by fetching a token from that realm (with the
credentials as Basic auth, as `docker login` does) and repeating the request with it. Messages never hold the
secret: they quote the registry's own error text.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator

import requests
from django.conf import settings

log = logging.getLogger(__name__)

# `Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"`
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


class RegistryHTTPError(Exception):
    """The registry answered, but not with what was asked; the message says why in the registry's words."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RegistryUnreachable(RegistryHTTPError):
    """No answer at all: a wrong address, a registry that is down, or TLS that cannot be verified."""


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """The scheme and parameters of a `WWW-Authenticate` header."""
    scheme, _, rest = header.strip().partition(" ")
    params = {key.lower(): quoted if quoted or not bare else bare for key, quoted, bare in _PARAM.findall(rest)}
    return scheme.lower(), params


def error_text(response: requests.Response) -> str:
    """The registry's own words for a failed answer: Distribution's `errors`, a token server's `details`."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:300] if text and "<html" not in text.lower() else f"HTTP {response.status_code}"
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(str(e.get("message") or e.get("code")) for e in errors if isinstance(e, dict))
        for key in ("details", "detail", "message", "error"):
            if body.get(key):
                return str(body[key])
    return f"HTTP {response.status_code}"


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
    ) -> None:
        self.api_url = api_url.rstrip("/")
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

    def _send(self, url: str, headers: dict[str, str], auth=None, params=None) -> requests.Response:
        try:
            with self._verify() as verify:
                return self._session.get(
                    url, headers=headers, auth=auth, params=params, timeout=self.timeout, verify=verify
                )
        except requests.exceptions.SSLError:
            raise RegistryUnreachable(
                f"The TLS certificate of {url.split('/v2')[0]} cannot be verified: add its CA certificate."
            ) from None
        except requests.exceptions.Timeout:
            raise RegistryUnreachable(f"{url.split('?')[0]} did not answer in {self.timeout} seconds.") from None
        except requests.exceptions.RequestException as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else type(exc).__name__
            raise RegistryUnreachable(f"{url.split('?')[0]} does not answer ({reason}).") from None

    def get(self, path: str, params: dict | None = None) -> requests.Response:
        """GET `path` under /v2/, authenticating as the registry asks; raises RegistryHTTPError unless 2xx."""
        url = f"{self.api_url}{path}"
        response = self._send(url, self._headers_for(path), self._basic_auth(), params)
        if response.status_code == 401:
            self._answer_challenge(response.headers.get("WWW-Authenticate", ""), path)
            response = self._send(url, self._headers_for(path), self._basic_auth(), params)
        if not response.ok:
            raise RegistryHTTPError(error_text(response), response.status_code)
        return response

    def _basic_auth(self):
        return (self.username, self.secret) if self._basic else None

    def _headers_for(self, path: str) -> dict[str, str]:
        token = self._bearer.get(path)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _answer_challenge(self, header: str, path: str) -> None:
        scheme, params = parse_challenge(header)
        if scheme == "basic":
            if not self.username and not self.secret:
                raise RegistryHTTPError("The registry asks for a username and password.", 401)
            self._basic = True
        elif scheme == "bearer" and params.get("realm"):
            self._bearer[path] = self._token(params)
        else:
            raise RegistryHTTPError(f"The registry asks for an unknown kind of authentication: {scheme!r}.", 401)

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
            raise RegistryHTTPError(error_text(response), response.status_code)
        if not response.ok:
            raise RegistryHTTPError(f"The token service answered: {error_text(response)}", response.status_code)
        try:
            body = response.json()
        except ValueError:
            raise RegistryHTTPError("The token service did not answer JSON.", response.status_code) from None
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryHTTPError("The token service answered no token.", response.status_code)
        return token
