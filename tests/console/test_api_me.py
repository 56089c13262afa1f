from __future__ import annotations


def test_it_returns_the_current_user(owner_api, owner):
    response = owner_api.get("/api/v1/auth/me/")
    assert response.status_code == 200
    assert response.json() == {"id": owner.pk, "username": "alice", "email": "alice@example.com"}


def test_it_needs_authentication(api_client, db):
    assert api_client.get("/api/v1/auth/me/").status_code == 401


def test_it_refuses_post(owner_api):
    assert owner_api.post("/api/v1/auth/me/").status_code == 405
