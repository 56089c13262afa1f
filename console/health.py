"""Is each service the console needs answering? Used by /healthz and the dashboard (the engine's facts)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from console.engine import Engine, EngineError


@dataclass(frozen=True)
class ServiceState:
    ok: bool
    detail: str

    def as_dict(self) -> dict:
        return {"ok": self.ok, "detail": self.detail}


def check_database() -> ServiceState:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # every driver raises its own kind; all mean "not answering"
        return ServiceState(False, f"the database does not answer: {str(exc).strip()[:200]}")
    return ServiceState(True, connection.vendor)


def check_broker() -> ServiceState:
    from console.celery import app

    try:
        with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=settings.HEALTH_TIMEOUT)
            # Virtual transports (Redis) connect lazily: opening the channel is what reaches the server.
            channel = conn.default_channel
            transport = channel.connection.client.transport.driver_name
    except Exception as exc:  # kombu raises transport-specific errors
        return ServiceState(False, f"the broker does not answer: {str(exc).strip()[:200]}")
    return ServiceState(True, str(transport))


def check_engine() -> ServiceState:
    try:
        with Engine.for_builds(timeout=settings.HEALTH_TIMEOUT) as engine:
            engine.ping()
    except EngineError as exc:
        return ServiceState(False, str(exc))
    return ServiceState(True, engine.url)


def engine_overview() -> tuple[dict | None, str | None, str]:
    """The build engine's facts for the dashboard: (its info, None, its URL), or (None, why it did not answer,
    where it was asked)."""
    info, error = None, None
    try:
        with Engine.for_builds(timeout=settings.HEALTH_TIMEOUT) as engine:
            info = engine.info()
            url = engine.url
    except EngineError as exc:
        error, url = str(exc), settings.DOCKER_HOST or "the local socket"
    return info, error, url


def service_states() -> dict[str, ServiceState]:
    return {"database": check_database(), "broker": check_broker(), "engine": check_engine()}
