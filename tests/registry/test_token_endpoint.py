"""GET /registry/token/: the realm of the console's registry."""

from __future__ import annotations

import base64

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.urls import reverse

from console.accounts.services import create_access_token
from registry.models import PublicRepository
from registry.tokens import CERT_FILE, ensure_signing_material
from tests.conftest import PASSWORD


@pytest.fixture
def signing(settings, tmp_path):
    ensure_signing_material(tmp_path)
    settings.REGISTRY_DIR = tmp_path
    settings.REGISTRY_SERVICE = "svc"
    settings.REGISTRY_ISSUER = "issuer"
    return x509.load_pem_x509_certificate((tmp_path / CERT_FILE).read_bytes())


def basic(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


def ask(client, *scopes: str, auth: str | None = None, service: str = "svc"):
    headers = {"HTTP_AUTHORIZATION": auth} if auth else {}
    return client.get(reverse("registry:token-issue"), {"service": service, "scope": list(scopes)}, **headers)


def claims_of(response, certificate) -> dict:
    body = response.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] > 0
    header = jwt.get_unverified_header(body["token"])
    assert header["alg"] == "RS256"
    der = base64.b64decode(header["x5c"][0])
    assert der == certificate.public_bytes(serialization.Encoding.DER)
    return jwt.decode(body["token"], certificate.public_key(), algorithms=["RS256"], audience="svc", issuer="issuer")


def test_it_grants_pull_and_push_in_the_users_own_namespace(client, owner, signing):
    response = ask(client, "repository:alice/app:pull,push", auth=basic("alice", PASSWORD))
    assert response.status_code == 200
    claims = claims_of(response, signing)
    assert claims["sub"] == "alice"
    assert {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"} <= set(claims)
    assert claims["access"] == [{"type": "repository", "name": "alice/app", "actions": ["pull", "push"]}]


def test_it_accepts_a_personal_access_token(client, owner, signing):
    _, raw = create_access_token(owner, "ci")
    response = ask(client, "repository:alice/app:push", auth=basic("alice", raw))
    assert claims_of(response, signing)["access"] == [
        {"type": "repository", "name": "alice/app", "actions": ["push"]}]


def test_it_grants_nothing_in_another_users_namespace(client, owner, outsider, signing):
    response = ask(client, "repository:alice/app:pull,push", auth=basic("mallory", PASSWORD))
    assert response.status_code == 200
    assert claims_of(response, signing)["access"] == []


def test_it_grants_only_pull_on_a_public_repository(client, owner, outsider, signing):
    PublicRepository.objects.create(owner=owner, name="alice/shared")
    response = ask(client, "repository:alice/shared:pull,push", "repository:alice/other:pull",
                   auth=basic("mallory", PASSWORD))
    assert claims_of(response, signing)["access"] == [
        {"type": "repository", "name": "alice/shared", "actions": ["pull"]}]


def test_anonymous_gets_only_public_pulls(client, owner, signing):
    PublicRepository.objects.create(owner=owner, name="alice/shared")
    response = ask(client, "repository:alice/shared:pull,push", "repository:alice/app:pull")
    claims = claims_of(response, signing)
    assert claims["sub"] == ""
    assert claims["access"] == [{"type": "repository", "name": "alice/shared", "actions": ["pull"]}]


def test_it_never_grants_the_catalog(client, owner, signing):
    response = ask(client, "registry:catalog:*", auth=basic("alice", PASSWORD))
    assert claims_of(response, signing)["access"] == []


def test_wrong_credentials_are_a_401(client, owner, signing):
    for auth in (basic("alice", "wrong"), basic("nobody", PASSWORD), "Basic not-base64!", "Bearer abc"):
        response = ask(client, "repository:alice/app:pull", auth=auth)
        assert response.status_code == 401
        assert "WWW-Authenticate" in response
        assert "token" not in response.json()


def test_it_refuses_another_service(client, owner, signing):
    response = ask(client, "repository:alice/app:pull", auth=basic("alice", PASSWORD), service="other")
    assert response.status_code == 400


def test_it_says_when_the_signing_key_is_missing(client, owner, settings, tmp_path):
    settings.REGISTRY_DIR = tmp_path / "none"
    settings.REGISTRY_SERVICE = "svc"
    response = ask(client, auth=basic("alice", PASSWORD))
    assert response.status_code == 503
    assert "registry_config" in response.json()["details"]


def test_it_refuses_post(client, owner, signing):
    assert client.post(reverse("registry:token-issue")).status_code == 405


# -- the build farm's shared cache (builds/sharedcache.py) --------------------------------------------------


def test_the_build_cache_namespace_is_granted_to_no_account(client, owner, signing):
    from django.contrib.auth import get_user_model

    # An account whose name predates the reservation, and a publication of a cache repository, grant nothing.
    squatter = get_user_model().objects.create_user("console-cache", "cc@example.com", PASSWORD)
    PublicRepository.objects.create(owner=squatter, name="console-cache/r1")
    for username in ("alice", "console-cache"):
        response = ask(client, "repository:console-cache/r1:pull,push", auth=basic(username, PASSWORD))
        assert response.status_code in (200, 401)
        if response.status_code == 200:
            assert claims_of(response, signing)["access"] == []
    assert claims_of(ask(client, "repository:console-cache/r1:pull"), signing)["access"] == []


def test_a_build_cache_credential_grants_pull_of_its_repository_only(client, owner, signing):
    from registry.tokens import BUILD_CACHE_USER, build_cache_credential

    username, password = build_cache_credential("console-cache/r7")
    assert username == BUILD_CACHE_USER
    response = ask(client, "repository:console-cache/r7:pull,push", "repository:console-cache/r8:pull",
                   "repository:alice/app:pull", auth=basic(username, password))
    assert response.status_code == 200
    claims = claims_of(response, signing)
    assert claims["sub"] == BUILD_CACHE_USER
    assert claims["access"] == [{"type": "repository", "name": "console-cache/r7", "actions": ["pull"]}]
    # Asked for nothing it names: granted nothing.
    assert claims_of(ask(client, "repository:console-cache/r8:pull", auth=basic(username, password)),
                     signing)["access"] == []


def test_a_forged_or_expired_build_cache_credential_is_a_401(client, owner, signing, monkeypatch):
    from django.core import signing as django_signing

    from registry import tokens

    _, good = tokens.build_cache_credential("console-cache/r7")
    forged = [
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        django_signing.dumps("console-cache/r7", salt="another-salt"),
        django_signing.dumps("alice/app", salt="registry.build-cache"),
        "",
    ]
    for password in forged:
        response = ask(client, "repository:console-cache/r7:pull", auth=basic(tokens.BUILD_CACHE_USER, password))
        assert response.status_code == 401, password
        assert "token" not in response.json()
    monkeypatch.setattr(tokens, "BUILD_CACHE_CREDENTIAL_SECONDS", -1)
    response = ask(client, "repository:console-cache/r7:pull", auth=basic(tokens.BUILD_CACHE_USER, good))
    assert response.status_code == 401


def test_the_console_signs_cache_tokens_only_for_the_cache_namespace(signing):
    from registry.tokens import build_cache_credential, build_cache_token

    token = build_cache_token("console-cache/r3", {"pull", "push"})
    claims = jwt.decode(token, signing.public_key(), algorithms=["RS256"], audience="svc", issuer="issuer")
    assert claims["access"] == [{"type": "repository", "name": "console-cache/r3", "actions": ["pull", "push"]}]
    for name in ("alice/app", "console-cachex/r3", "console-cache"):
        with pytest.raises(ValueError):
            build_cache_token(name, {"pull"})
        with pytest.raises(ValueError):
            build_cache_credential(name)
