from __future__ import annotations

from console.accounts.models import AccessToken
from tests.conftest import PASSWORD

URL = "/api/v1/auth/token/"


def test_it_issues_a_token_that_authenticates(api_client, owner):
    response = api_client.post(URL, {"username": "alice", "password": PASSWORD, "name": "laptop"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "laptop"
    assert set(body) == {"token", "name"}
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    me = api_client.get("/api/v1/auth/me/")
    assert me.status_code == 200
    assert me.json()["username"] == "alice"


def test_the_token_is_stored_hashed(api_client, owner):
    raw = api_client.post(URL, {"username": "alice", "password": PASSWORD}, format="json").json()["token"]
    token = AccessToken.objects.get(user=owner)
    assert raw not in token.key_hash
    assert token.prefix == raw[:12]


def test_it_refuses_a_wrong_password(api_client, owner):
    response = api_client.post(URL, {"username": "alice", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert "Unable to log in" in response.json()["detail"]
    assert not AccessToken.objects.exists()


def test_it_refuses_an_unknown_user(api_client, db):
    response = api_client.post(URL, {"username": "ghost", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert not AccessToken.objects.exists()


def test_it_refuses_malformed_json(api_client, owner):
    response = api_client.post(URL, data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert not AccessToken.objects.exists()
