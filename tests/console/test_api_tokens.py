from __future__ import annotations

from console.accounts.models import AccessToken
from console.accounts.services import create_access_token

URL = "/api/v1/auth/tokens/"


def test_it_lists_the_callers_tokens_only(owner_api, owner, outsider):
    create_access_token(owner, "mine")
    create_access_token(outsider, "theirs")
    response = owner_api.get(URL)
    assert response.status_code == 200
    assert [token["name"] for token in response.json()["results"]] == ["mine"]
    assert set(response.json()["results"][0]) == {"id", "name", "prefix", "created", "last_used"}


def test_a_revoked_token_no_longer_authenticates(api_client, owner):
    token, raw = create_access_token(owner, "ci")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    assert api_client.delete(f"{URL}{token.pk}/").status_code == 204
    assert not AccessToken.objects.filter(pk=token.pk).exists()
    response = api_client.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert "not valid" in response.json()["detail"]


def test_an_outsider_cannot_revoke_it(api_client, owner, outsider):
    token, _ = create_access_token(owner, "mine")
    api_client.force_authenticate(outsider)
    assert api_client.delete(f"{URL}{token.pk}/").status_code == 404
    assert AccessToken.objects.filter(pk=token.pk).exists()


def test_it_records_last_use(api_client, owner):
    token, raw = create_access_token(owner, "ci")
    assert token.last_used is None
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    api_client.get(URL)
    token.refresh_from_db()
    assert token.last_used is not None


def test_anonymous_requests_get_401(api_client, db):
    response = api_client.get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_malformed_authorization_header_gets_401(api_client, db):
    api_client.credentials(HTTP_AUTHORIZATION="Token")
    assert api_client.get(URL).status_code == 401
    api_client.credentials(HTTP_AUTHORIZATION="Token cst_made_up")
    assert api_client.get(URL).status_code == 401
