"""The database briefly unreachable: the web answers 503 with a readable message (JSON for the API, a page for
the browser), never a traceback, and answers normally again once the database is back.

The test's own connection is pointed at a closed port and closed, so the next query of the request has to
connect and is refused, as when PostgreSQL restarts; the real settings are put back before anything else runs.
"""

from __future__ import annotations

import contextlib
import socket

import pytest
from django.db import connection

from console.accounts.services import create_access_token

pytestmark = pytest.mark.django_db(transaction=True)
MESSAGE = "The database is not available right now; try again shortly."


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def database_unreachable():
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port()))
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
        connection.ensure_connection()


def assert_no_traceback(text: str) -> None:
    assert "Traceback" not in text and "OperationalError" not in text and "psycopg" not in text


@pytest.mark.parametrize("debug", [True, False])
def test_the_browser_gets_a_503_page(owner_client, settings, debug):
    settings.DEBUG = debug
    with database_unreachable():
        answer = owner_client.get("/builds/")
    page = answer.content.decode()
    assert answer.status_code == 503 and answer["Retry-After"] == "5"
    assert answer["Content-Type"].startswith("text/html") and MESSAGE in page
    assert "Content-Security-Policy" in answer.headers
    assert_no_traceback(page)
    # Back to normal once the database answers.
    assert owner_client.get("/builds/").status_code == 200


def test_the_api_gets_a_503_json_answer_with_a_session_or_a_token(owner_client, owner, client):
    _, token = create_access_token(owner, "faults")
    with database_unreachable():
        by_session = owner_client.get("/api/v1/builds/")
        by_token = client.get("/api/v1/images/", HTTP_AUTHORIZATION=f"Token {token}")
        posted = owner_client.post("/api/v1/repositories/", {"name": "x"}, content_type="application/json")
    for answer in (by_session, by_token, posted):
        assert answer.status_code == 503, answer.content
        assert answer.json() == {"detail": MESSAGE}
    assert owner_client.get("/api/v1/builds/").status_code == 200
    # The refused post wrote nothing.
    assert owner_client.get("/api/v1/repositories/").json()["results"] == []


def test_an_anonymous_visitor_gets_the_503_page_too(client):
    with database_unreachable():
        answer = client.get("/accounts/login/")
        signin = client.post("/accounts/login/", {"username": "alice", "password": "whatever"})
    # The login form needs no database to show; signing in does.
    assert answer.status_code == 200
    assert signin.status_code == 503 and MESSAGE in signin.content.decode()
    assert_no_traceback(signin.content.decode())
