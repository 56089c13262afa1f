from __future__ import annotations

import pytest


@pytest.mark.engine
def test_it_answers_200_when_everything_answers(client, db):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["broker"]["ok"] and body["engine"]["ok"]


def test_it_answers_503_with_a_reason_when_the_engine_is_gone(client, db, settings):
    settings.DOCKER_HOST = "tcp://127.0.0.1:9"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["engine"]["ok"] is False
    assert "tcp://127.0.0.1:9 does not answer (connection refused)" in body["engine"]["detail"]
    assert "Traceback" not in response.content.decode()
    assert body["database"]["ok"] is True


def test_it_answers_503_when_the_broker_is_gone(client, db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"]["ok"] is False
    assert "broker does not answer" in response.json()["broker"]["detail"]


def test_it_refuses_post(client, db):
    assert client.post("/healthz").status_code == 405
