"""The connection to a Docker Engine and the translation of its errors into the console's own.

It makes a client for the build engine or for a fleet host (unix socket, tcp, tcp with TLS, ssh), with
timeouts, and turns every `docker.errors.*` and connection failure into the console's own `EngineError`, whose
message is fit to show a user. Closing an Engine removes the TLS files it wrote.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import docker
import docker.constants
import docker.errors
import docker.tls
import requests.exceptions
from django.conf import settings

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


class EngineError(Exception):
    """Something went wrong on a Docker Engine; the message says what, in words a user understands."""


class EngineUnavailable(EngineError):
    """The engine did not answer: it is stopped, unreachable, or refused our credentials."""


class EngineNotFound(EngineError):
    """The engine does not have the image or container asked for."""


class EngineConflict(EngineError):
    """The engine refused because of the state of an object (an image in use, a name taken)."""


class EngineBadRequest(EngineError):
    """The engine refused a malformed parameter (400), such as an image reference that is not one."""


@dataclass(frozen=True)
class TLSMaterial:
    """PEM texts for a tcp+TLS engine: the CA that signed the engine's certificate, and our client pair."""

    ca_cert: str
    client_cert: str
    client_key: str


def _api_message(exc: docker.errors.APIError) -> str:
    explanation = exc.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    return str(explanation or exc)


@contextlib.contextmanager
def translate_errors(action: str, where: str) -> Iterator[None]:
    """Run a block of SDK calls; any failure leaves as an EngineError that names the action and the engine."""
    try:
        yield
    except docker.errors.NotFound as exc:
        raise EngineNotFound(f"{action}: {_api_message(exc)}") from exc
    except docker.errors.APIError as exc:
        error_class = {409: EngineConflict, 400: EngineBadRequest}.get(exc.status_code, EngineError)
        raise error_class(f"{action} on {where}: {_api_message(exc)}") from exc
    except docker.errors.TLSParameterError as exc:
        raise EngineUnavailable(f"{action}: the TLS material for {where} is unusable: {exc}") from exc
    except requests.exceptions.SSLError as exc:
        raise EngineUnavailable(f"{action}: the TLS handshake with {where} failed ({_reason(exc)})") from exc
    except (requests.exceptions.ConnectionError, ConnectionError, FileNotFoundError) as exc:
        raise EngineUnavailable(f"{action}: the Docker Engine at {where} does not answer ({_reason(exc)})") from exc
    except (requests.exceptions.Timeout, TimeoutError) as exc:
        raise EngineUnavailable(f"{action}: the Docker Engine at {where} did not answer in time") from exc
    except docker.errors.DockerException as exc:
        # The SDK wraps connection failures met while negotiating the API version: say what they are.
        if _caused_by(exc, (requests.exceptions.SSLError,)):
            raise EngineUnavailable(f"{action}: the TLS handshake with {where} failed ({_reason(exc)})") from exc
        if _caused_by(exc, (requests.exceptions.ConnectionError, ConnectionError, FileNotFoundError)):
            raise EngineUnavailable(f"{action}: the Docker Engine at {where} does not answer ({_reason(exc)})") from exc
        if _caused_by(exc, (requests.exceptions.Timeout, TimeoutError)):
            raise EngineUnavailable(f"{action}: the Docker Engine at {where} did not answer in time") from exc
        raise EngineUnavailable(f"{action}: the Docker Engine at {where} is not usable ({_reason(exc)})") from exc


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


def _caused_by(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    return any(isinstance(link, kinds) for link in _chain(exc))


def _reason(exc: BaseException) -> str:
    """The innermost cause of a connection error, without the adapter's long repr."""
    text = " ".join(str(link) for link in _chain(exc))
    for marker in ("Connection refused", "No such file or directory", "timed out", "Name or service not known",
                   "No route to host", "certificate verify failed", "bad certificate", "Network is unreachable",
                   "Permission denied", "Connection reset"):
        if marker in text:
            return marker.lower()
    return str(list(_chain(exc))[-1])[:200]


class Engine:
    """A connection to one Docker Engine. Use it as a context manager so that what it made is cleaned up."""

    def __init__(self, url: str | None = None, tls: TLSMaterial | None = None, timeout: int | None = None) -> None:
        self.url = url or settings.DOCKER_HOST or DEFAULT_SOCKET
        self.tls = tls
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
                client = docker.DockerClient(
                    base_url=self._base_url(),
                    version=docker.constants.MINIMUM_DOCKER_API_VERSION,
                    timeout=self.timeout,
                    tls=self._tls_config(),
                    use_ssh_client=self.url.startswith("ssh://"),
                )
                client.api.trust_env = False
                client.api._version = client.api._retrieve_server_version()
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

    def info(self) -> dict[str, Any]:
        """What the dashboard and the fleet show of an engine, in the console's own field names."""
        with self.errors("Reading engine information"):
            info = self.api.info()
            version = self.api.version()
        status = dict(info.get("DriverStatus") or [])
        return {
            "server_version": version.get("Version", ""),
            "api_version": version.get("ApiVersion", ""),
            "os": info.get("OperatingSystem", ""),
            "kernel": info.get("KernelVersion", ""),
            "storage_driver": info.get("Driver", ""),
            "backing_filesystem": status.get("Backing Filesystem", ""),
            "cpus": info.get("NCPU", 0),
            "memory": info.get("MemTotal", 0),
            "containers": info.get("Containers", 0),
            "containers_running": info.get("ContainersRunning", 0),
            "images": info.get("Images", 0),
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
