"""The connection to a Docker Engine and the translation of its errors into the console's own.

It makes a client for the build engine or for a fleet host (unix socket, tcp, tcp with TLS, ssh), with
timeouts, and turns every `docker.errors.*` and connection failure into the console's own `EngineError`, whose
message is fit to show a user. Closing an Engine removes the TLS files it wrote.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import http.client
import io
import os
import socket
import ssl
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import docker
import docker.constants
import docker.errors
import docker.tls
import paramiko
import requests.exceptions
import urllib3.exceptions
from django.conf import settings
from docker.transport.sshconn import SSHHTTPAdapter

from console.errors import NotFound, UpstreamError

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


class EngineError(UpstreamError):
    """Something went wrong on a Docker Engine; the message says what, in words a user understands.

    One of the console's own refusals (console/errors.py): the API answers {"detail": message} with its status
    (502 unless a subclass says otherwise), a form shows it, and no view needs this package to catch it."""


class EngineUnavailable(EngineError):
    """The engine did not answer: it is stopped, unreachable, or refused our credentials."""

    status = HTTPStatus.SERVICE_UNAVAILABLE.value


class EngineNotFound(EngineError, NotFound):
    """The engine does not have the image or container asked for (a console.errors.NotFound too: a 404)."""

    status = HTTPStatus.NOT_FOUND.value


class EngineConflict(EngineError):
    """The engine refused because of the state of an object (an image in use, a name taken)."""


class EngineBadRequest(EngineError):
    """The engine refused a malformed parameter (400), such as an image reference that is not one."""


class EngineRefused(EngineUnavailable):
    """The console will not connect there on this user's behalf (console/netpolicy.py); the message says why."""


@dataclass(frozen=True)
class TLSMaterial:
    """PEM texts for a tcp+TLS engine: the CA that signed the engine's certificate, and our client pair."""

    ca_cert: str
    client_cert: str
    client_key: str


# The longest engine message shown to a user: an engine's own messages are short, and a longer one is not worth it.
MAX_MESSAGE = 500
NOT_AN_ENGINE = "it did not answer as a Docker Engine"


def _api_message(exc: docker.errors.APIError) -> str:
    """The engine's own words for an error, only when the answer is the Engine API's error format.

    A real engine answers errors as JSON `{"message": "..."}` ("No such image: x"): worth showing. Anything else
    (an HTML page, a banner, a JSON object without that key) comes from something that is not a Docker Engine,
    perhaps a service on the console's own network that a user aimed a host at: its body is never shown, so that
    the console cannot be used to read what other services answer. Only the HTTP status is named."""
    response = exc.response
    if response is None:
        # Raised by the SDK itself, not read from an answer: its own words.
        return str(exc.explanation or "the engine refused")[:MAX_MESSAGE]
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"].strip():
        return body["message"].strip()[:MAX_MESSAGE]
    return f"{NOT_AN_ENGINE} (HTTP {response.status_code})"


@contextlib.contextmanager
def translate_errors(action: str, where: str) -> Iterator[None]:
    """Run a block of SDK calls; any failure leaves as an EngineError that names the action and the engine.

    The messages are the console's own fixed words (refused, timed out, TLS failure, not an engine), plus an
    engine's own error message when it is one: never an exception's text, which embeds what the other side sent."""
    try:
        yield
    except EngineError:
        raise
    except docker.errors.NotFound as exc:
        raise EngineNotFound(f"{action}: {_api_message(exc)}") from exc
    except docker.errors.APIError as exc:
        error_class = {409: EngineConflict, 400: EngineBadRequest}.get(exc.status_code, EngineError)
        raise error_class(f"{action} on {where}: {_api_message(exc)}") from exc
    except docker.errors.TLSParameterError as exc:
        raise EngineUnavailable(f"{action}: the TLS material for {where} is unusable") from exc
    except paramiko.ssh_exception.NoValidConnectionsError as exc:
        raise EngineUnavailable(f"{action}: the ssh server at {where} does not answer ({_reason(exc)})") from exc
    except paramiko.BadHostKeyException as exc:
        raise EngineUnavailable(
            f"{action}: the ssh host key of {where} is not the one recorded for it (it presented "
            f"{ssh_fingerprint(exc.key)}, expected {ssh_fingerprint(exc.expected_key)})"
        ) from exc
    except paramiko.AuthenticationException as exc:
        raise EngineUnavailable(f"{action}: the ssh server at {where} refused the key") from exc
    except paramiko.SSHException as exc:
        # paramiko's texts quote the server's banner: say only that ssh failed.
        raise EngineUnavailable(f"{action}: the ssh connection to {where} failed ({_reason(exc)})") from exc
    except requests.exceptions.SSLError as exc:
        raise EngineUnavailable(f"{action}: the TLS handshake with {where} failed ({_reason(exc)})") from exc
    except (requests.exceptions.ConnectionError, ConnectionError, FileNotFoundError) as exc:
        raise EngineUnavailable(_unanswered(action, where, "does not answer", exc)) from exc
    except (requests.exceptions.Timeout, TimeoutError) as exc:
        raise EngineUnavailable(f"{action}: the Docker Engine at {where} did not answer in time") from exc
    except (requests.exceptions.RequestException, ValueError, OSError) as exc:
        # A body that is not JSON where the engine answers JSON, a broken chunked stream, an ssh channel that
        # closed: whatever answered, it is not an engine that works.
        raise EngineUnavailable(_unanswered(action, where, "is not usable", exc)) from exc
    except docker.errors.DockerException as exc:
        # The SDK wraps failures met while negotiating the API version: say what they are.
        if _caused_by(exc, (paramiko.SSHException,)):
            raise EngineUnavailable(f"{action}: the ssh connection to {where} failed ({_reason(exc)})") from exc
        if _caused_by(exc, (requests.exceptions.SSLError,)):
            raise EngineUnavailable(f"{action}: the TLS handshake with {where} failed ({_reason(exc)})") from exc
        if _caused_by(exc, (requests.exceptions.ConnectionError, ConnectionError, FileNotFoundError)):
            raise EngineUnavailable(_unanswered(action, where, "does not answer", exc)) from exc
        if _caused_by(exc, (requests.exceptions.Timeout, TimeoutError, socket.timeout)):
            raise EngineUnavailable(f"{action}: the Docker Engine at {where} did not answer in time") from exc
        api_error = next((link for link in _chain(exc) if isinstance(link, docker.errors.APIError)), None)
        if api_error is not None:
            message = _api_message(api_error)
            if message.startswith(NOT_AN_ENGINE):
                raise EngineUnavailable(f"{action}: {where}: {message}") from exc
            raise EngineUnavailable(f"{action}: the engine at {where} is not usable ({message})") from exc
        raise EngineUnavailable(_unanswered(action, where, "is not usable", exc)) from exc


def _unanswered(action: str, where: str, what: str, exc: BaseException) -> str:
    reason = _reason(exc)
    if reason.startswith("it "):
        # Something answered, and it was not an engine.
        return f"{action}: {where}: {reason}"
    return f"{action}: the Docker Engine at {where} {what} ({reason})"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and exceptions carried in their arguments (requests wraps
    urllib3's errors, which wrap http.client's, in `args`)."""
    seen = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
        following = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        if following is not None:
            pending.append(following)


def _caused_by(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    return any(isinstance(link, kinds) for link in _chain(exc))


# What the operating system or the TLS library says of a failed connection, looked for in the exceptions' texts:
# each is reported in these fixed words only, whatever surrounds it.
_MARKERS = ("Connection refused", "No such file or directory", "timed out", "Name or service not known",
            "No route to host", "certificate verify failed", "bad certificate", "Network is unreachable",
            "Permission denied", "Connection reset", "wrong version number", "unknown ca", "handshake failure")
# Exceptions that mean the other side answered, but not in HTTP, or not as an engine.
_NOT_AN_ENGINE = (http.client.BadStatusLine, http.client.LineTooLong, http.client.IncompleteRead,
                  urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError, ValueError,
                  requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError,
                  requests.exceptions.InvalidJSONError, EOFError, KeyError)


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in fixed words: never the text of an exception, which may quote what the other
    side sent (a banner, an HTTP status line, a page)."""
    links = list(_chain(exc))
    # Only the messages of errors raised on this side (the OS, the TLS library) are searched, never a body.
    text = " ".join(str(link) for link in links if isinstance(link, OSError | ssl.SSLError | TimeoutError))
    for marker in _MARKERS:
        if marker in text:
            return marker.lower()
    if any(isinstance(link, http.client.RemoteDisconnected) for link in links):
        return "it closed the connection without answering as a Docker Engine"
    if any(isinstance(link, _NOT_AN_ENGINE) for link in links):
        return NOT_AN_ENGINE
    if any(isinstance(link, ssl.SSLError) for link in links):
        return "TLS failure"
    if any(isinstance(link, paramiko.SSHException) for link in links):
        return "ssh failure"
    return f"the connection failed: {type(links[-1]).__name__}"


# -- ssh ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SSHMaterial:
    """How the console logs in to an ssh:// engine: its private key (OpenSSH or PEM text), and the server's
    host key ("ssh-ed25519 AAAA...") it must present; blank = trust the first one seen (see Engine)."""

    private_key: str
    host_key: str = ""


SSH_KEY_CLASSES = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)
SSH_CONNECT_TIMEOUT = 15


def load_ssh_private_key(text: str) -> paramiko.PKey:
    """The private key in `text`; ValueError when it is not an unencrypted ed25519, ECDSA or RSA key."""
    for key_class in SSH_KEY_CLASSES:
        try:
            return key_class.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError, TypeError, IndexError):
            continue
    raise ValueError("not an unencrypted ed25519, ECDSA or RSA private key")


def parse_ssh_host_key(text: str) -> paramiko.PKey:
    """A public key line ("ssh-ed25519 AAAA... comment", or a known_hosts line with host names first)."""
    tokens = (text or "").split()
    for index, token in enumerate(tokens[:-1]):
        if token.startswith(("ssh-", "ecdsa-")):
            try:
                return paramiko.PKey.from_type_string(token, base64.b64decode(tokens[index + 1], validate=True))
            except (paramiko.SSHException, ValueError, TypeError, binascii.Error, paramiko.UnknownKeyType):
                break
    raise ValueError("not a public key line like 'ssh-ed25519 AAAA...'")


def ssh_host_key_line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


def ssh_fingerprint(key: paramiko.PKey | None) -> str:
    """SHA256:... as `ssh-keygen -l` prints it."""
    if key is None:
        return "none"
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """The console loads no known_hosts file of its own machine: every server key comes here, and is compared with
    the one recorded for the host, or (none recorded yet) accepted and handed to `on_new` to record."""

    def __init__(self, expected: paramiko.PKey | None, on_new) -> None:
        self.expected = expected
        self.on_new = on_new

    def missing_host_key(self, client, hostname, key) -> None:
        if self.expected is None:
            if self.on_new is not None:
                self.on_new(ssh_host_key_line(key))
            return
        if key.get_name() != self.expected.get_name() or key.asbytes() != self.expected.asbytes():
            raise paramiko.BadHostKeyException(hostname, key, self.expected)


class _SSHAdapter(SSHHTTPAdapter):
    """The SDK's paramiko adapter, logging in with the host's own key only: no ~/.ssh/config (a ProxyCommand
    there would run on the console's machine), no agent, no key files of the console's machine, and the
    host key checked by `_HostKeyPolicy` instead of the machine's known_hosts."""

    def __init__(self, base_url: str, material: SSHMaterial, timeout: int, on_new_host_key) -> None:
        self._material = material
        self._connect_timeout = min(timeout, SSH_CONNECT_TIMEOUT)
        self._on_new_host_key = on_new_host_key
        super().__init__(base_url, timeout=timeout, shell_out=False)

    def _create_paramiko_client(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        expected = parse_ssh_host_key(self._material.host_key) if self._material.host_key else None
        self.ssh_client = paramiko.SSHClient()
        self.ssh_client.set_missing_host_key_policy(_HostKeyPolicy(expected, self._on_new_host_key))
        self.ssh_params = {
            "hostname": parts.hostname, "port": parts.port or 22, "username": parts.username,
            "pkey": load_ssh_private_key(self._material.private_key) if self._material.private_key else None,
            "allow_agent": False, "look_for_keys": False, "timeout": self._connect_timeout,
            "banner_timeout": self._connect_timeout, "auth_timeout": self._connect_timeout,
        }


# The longest engine fact kept (a version, a kernel name): an engine's own are short.
MAX_FACT = 200


def _text(value: Any) -> str:
    return value[:MAX_FACT] if isinstance(value, str) else ""


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class Engine:
    """A connection to one Docker Engine. Use it as a context manager so that what it made is cleaned up.

    An ssh:// engine given `ssh` material is reached with paramiko and that key only; when the material has no
    host key, the first key the server presents is accepted and passed to `on_new_host_key` (trust on first use:
    the caller records it, and every later connection must see the same key). An ssh:// engine without
    material (DOCKER_HOST, the operator's own build engine) uses the machine's `ssh` command and its config."""

    def __init__(self, url: str | None = None, tls: TLSMaterial | None = None, timeout: int | None = None,
                 ssh: SSHMaterial | None = None, on_new_host_key: Callable[[str], None] | None = None) -> None:
        self.url = url or settings.DOCKER_HOST or DEFAULT_SOCKET
        self.tls = tls
        self.ssh = ssh
        self.on_new_host_key = on_new_host_key
        self.timeout = timeout or settings.DOCKER_TIMEOUT
        self._client: docker.DockerClient | None = None
        self._tls_dir: tempfile.TemporaryDirectory | None = None

    @classmethod
    def for_builds(cls, timeout: int | None = None) -> Engine:
        """The engine that runs builds (DOCKER_HOST)."""
        return cls(settings.DOCKER_HOST, timeout=timeout)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._tls_dir is not None:
            self._tls_dir.cleanup()
            self._tls_dir = None

    def __repr__(self) -> str:
        return f"<Engine {self.url}>"

    @property
    def where(self) -> str:
        return self.url

    def errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        return translate_errors(action, self.where)

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            with self.errors("Connecting"):
                # requests lets REQUESTS_CA_BUNDLE (and proxy variables) override the host's own CA: an
                # engine is reached directly and verified against the CA it was registered with. So the
                # client starts at the oldest API, stops trusting the environment, then negotiates.
                is_ssh = self.url.startswith("ssh://")
                client = docker.DockerClient(
                    base_url=self._base_url(),
                    version=docker.constants.MINIMUM_DOCKER_API_VERSION,
                    timeout=self.timeout,
                    tls=self._tls_config(),
                    # With material, the shell-out adapter made here connects nothing: it is replaced below.
                    use_ssh_client=is_ssh,
                )
                try:
                    if is_ssh and self.ssh is not None:
                        adapter = _SSHAdapter(self.url, self.ssh, self.timeout, self.on_new_host_key)
                        client.api.mount("http+docker://ssh", adapter)
                        client.api._custom_adapter = adapter
                    client.api.trust_env = False
                    client.api._version = client.api._retrieve_server_version()
                except BaseException:
                    client.close()
                    raise
                self._client = client
        return self._client

    @property
    def api(self) -> docker.APIClient:
        return self.client.api

    def _base_url(self) -> str:
        if self.url.startswith("tcp://") and self.tls is not None:
            return "https://" + self.url.removeprefix("tcp://")
        return self.url

    def _tls_config(self) -> docker.tls.TLSConfig | None:
        if self.tls is None:
            return None
        # The SDK wants files: write the PEMs to a private folder removed on close().
        self._tls_dir = tempfile.TemporaryDirectory(prefix="console-tls-")
        paths = {}
        for name in ("ca_cert", "client_cert", "client_key"):
            path = os.path.join(self._tls_dir.name, f"{name}.pem")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(getattr(self.tls, name))
            paths[name] = path
        return docker.tls.TLSConfig(
            client_cert=(paths["client_cert"], paths["client_key"]), ca_cert=paths["ca_cert"], verify=True
        )

    # -- reading the engine ------------------------------------------------------------------------------

    def ping(self) -> None:
        with self.errors("Checking the engine"):
            self.api.ping()

    def _raw_info(self) -> tuple[dict[str, Any], dict[str, Any]]:
        with self.errors("Reading engine information"):
            info = self.api.info()
            version = self.api.version()
        # Something that answers JSON but not an engine's: say so rather than show what it sent.
        if not isinstance(info, dict) or not isinstance(version, dict) or not isinstance(info.get("ID"), str):
            raise EngineUnavailable(f"Reading engine information: {self.where}: {NOT_AN_ENGINE}")
        return info, version

    def engine_id(self) -> str:
        """The engine's own ID (`docker info` ID): the same engine reached by two URLs has one ID."""
        info, _ = self._raw_info()
        return _text(info.get("ID"))

    def info(self) -> dict[str, Any]:
        """What the dashboard and the fleet show of an engine, in the console's own field names."""
        info, version = self._raw_info()
        status = dict(item for item in info.get("DriverStatus") or [] if isinstance(item, list) and len(item) == 2)
        return {
            "id": _text(info.get("ID")),
            "server_version": _text(version.get("Version")),
            "api_version": _text(version.get("ApiVersion")),
            "os": _text(info.get("OperatingSystem")),
            "kernel": _text(info.get("KernelVersion")),
            "storage_driver": _text(info.get("Driver")),
            "backing_filesystem": _text(status.get("Backing Filesystem")),
            "cpus": _number(info.get("NCPU")),
            "memory": _number(info.get("MemTotal")),
            "containers": _number(info.get("Containers")),
            "containers_running": _number(info.get("ContainersRunning")),
            "images": _number(info.get("Images")),
        }

    # -- images ------------------------------------------------------------------------------------------

    def image_exists(self, reference: str) -> bool:
        try:
            with self.errors(f"Inspecting image {reference}"):
                self.api.inspect_image(reference)
        # A malformed reference (uppercase, too long) names no image: the engine answers 400 for it, not 404.
        except (EngineNotFound, EngineBadRequest):
            return False
        return True

    def import_image(
        self, chunks: Iterable[bytes], repository: str, tag: str, changes: list[str] | None = None
    ) -> str:
        """`docker import`: make an image from a root filesystem tar; returns the image id."""
        with self.errors(f"Importing {repository}:{tag}"):
            self.api.import_image_from_data(b"".join(chunks), repository=repository, tag=tag, changes=changes)
            return self.api.inspect_image(f"{repository}:{tag}")["Id"]

    def tag_image(self, image: str, repository: str, tag: str) -> None:
        with self.errors(f"Tagging {image} as {repository}:{tag}"):
            self.api.tag(image, repository, tag)
