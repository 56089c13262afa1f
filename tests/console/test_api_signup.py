from __future__ import annotations

from django.contrib.auth import get_user_model

URL = "/api/v1/auth/signup/"
User = get_user_model()


def test_it_creates_a_user(api_client, db):
    response = api_client.post(URL, {"username": "bob", "email": "bob@example.com",
                                      "password": "a long enough passphrase"}, format="json")
    assert response.status_code == 201
    assert set(response.json()) == {"id", "username", "email"}
    assert response.json()["username"] == "bob"
    assert User.objects.get(username="bob").check_password("a long enough passphrase")


def test_it_refuses_a_duplicate_username(api_client, owner):
    response = api_client.post(URL, {"username": "Alice", "email": "a2@example.com",
                                      "password": "a long enough passphrase"}, format="json")
    assert response.status_code == 400
    assert "username" in response.json()
    assert User.objects.count() == 1


def test_it_refuses_a_weak_password(api_client, db):
    response = api_client.post(URL, {"username": "bob", "email": "bob@example.com", "password": "123"},
                               format="json")
    assert response.status_code == 400
    assert any("too short" in message for message in response.json()["password"])
    assert not User.objects.exists()


def test_it_refuses_a_password_like_the_username(api_client, db):
    response = api_client.post(URL, {"username": "bobbington", "email": "b@example.com",
                                      "password": "bobbington1"}, format="json")
    assert response.status_code == 400
    assert "password" in response.json()


def test_it_refuses_malformed_json(api_client, db):
    response = api_client.post(URL, data='{"username": "bob",', content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert not User.objects.exists()


def test_it_names_missing_fields(api_client, db):
    response = api_client.post(URL, {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"username", "email", "password"}


def test_it_refuses_get(api_client, db):
    assert api_client.get(URL).status_code == 405
