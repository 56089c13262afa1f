"""/api/v1/registries/: accounts with write-only secrets."""

from __future__ import annotations

import base64
import json
import os

from django.core.management import call_command
from django.db import connection

from registry.models import RegistryAccount

SECRET = "s3cr3t-registry-password-0451"
URL = "/api/v1/registries/"


def raw_secret(account: RegistryAccount) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT secret FROM {RegistryAccount._meta.db_table} WHERE id = %s", [account.pk])
        return cursor.fetchone()[0]


def create(api, **fields):
    data = {"name": "hub", "kind": "dockerhub", "username": "alice", "secret": SECRET, **fields}
    return api.post(URL, data, format="json")


def test_it_creates_an_account_without_answering_the_secret(owner_api, owner):
    response = create(owner_api)
    assert response.status_code == 201
    body = response.json()
    assert "secret" not in body and SECRET not in json.dumps(body)
    assert body["has_secret"] is True
    assert body["url"] == "docker.io" and body["index"] == "docker.io"
    assert body["api_url"] == "https://registry-1.docker.io"
    account = RegistryAccount.objects.get(pk=body["id"])
    assert account.owner == owner and account.secret == SECRET
    assert SECRET not in raw_secret(account)


def test_the_list_holds_the_console_registry_and_no_secret(owner_api, owner, settings):
    create(owner_api)
    response = owner_api.get(URL)
    assert response.status_code == 200
    kinds = {item["kind"]: item for item in response.json()["results"]}
    assert set(kinds) == {"dockerhub", "console"}
    assert kinds["console"]["url"] == settings.REGISTRY_ADDRESS
    assert kinds["console"]["username"] == "alice"
    assert SECRET not in response.content.decode()
    # A second listing does not make a second console account.
    owner_api.get(URL)
    assert RegistryAccount.objects.filter(owner=owner, kind="console").count() == 1


def test_it_patches_and_keeps_the_secret_unless_given(owner_api):
    account_id = create(owner_api).json()["id"]
    response = owner_api.patch(f"{URL}{account_id}/", {"username": "bob"}, format="json")
    assert response.status_code == 200
    assert response.json()["username"] == "bob"
    assert RegistryAccount.objects.get(pk=account_id).secret == SECRET
    owner_api.patch(f"{URL}{account_id}/", {"secret": "new-one"}, format="json")
    assert RegistryAccount.objects.get(pk=account_id).secret == "new-one"


def test_it_refuses_put(owner_api):
    account_id = create(owner_api).json()["id"]
    assert owner_api.put(f"{URL}{account_id}/", {"name": "x", "kind": "quay"}, format="json").status_code == 405


def test_it_deletes_an_account(owner_api):
    account_id = create(owner_api).json()["id"]
    assert owner_api.delete(f"{URL}{account_id}/").status_code == 204
    assert not RegistryAccount.objects.filter(pk=account_id).exists()


def test_the_console_account_cannot_be_changed_or_deleted(owner_api, owner):
    console_id = next(item["id"] for item in owner_api.get(URL).json()["results"] if item["kind"] == "console")
    assert owner_api.patch(f"{URL}{console_id}/", {"username": "x"}, format="json").status_code == 400
    assert owner_api.delete(f"{URL}{console_id}/").status_code == 400
    assert RegistryAccount.objects.filter(pk=console_id, username="alice").exists()


def test_an_outsider_gets_404(owner_api, api_client, outsider):
    account_id = create(owner_api).json()["id"]
    api_client.force_authenticate(outsider)
    assert api_client.get(f"{URL}{account_id}/").status_code == 404
    assert api_client.patch(f"{URL}{account_id}/", {"username": "x"}, format="json").status_code == 404
    assert api_client.delete(f"{URL}{account_id}/").status_code == 404
    assert api_client.post(f"{URL}{account_id}/test/").status_code == 404
    assert RegistryAccount.objects.filter(pk=account_id, username="alice").exists()


def test_anonymous_gets_401(api_client):
    assert api_client.get(URL).status_code == 401


def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(owner_api, owner):
    cases = [
        ({"kind": "artifactory"}, "kind"),
        ({"kind": "console"}, "kind"),
        ({"kind": "generic", "url": ""}, "url"),
        ({"kind": "generic", "url": "ftp://x"}, "url"),
        ({"kind": "quay", "url": "evil.example.com"}, "url"),
        ({"kind": "dockerhub", "ca_certificate": "-----BEGIN CERTIFICATE-----"}, "ca_certificate"),
        ({"kind": "generic", "url": "https://r.example.com", "ca_certificate": "not a pem"}, "ca_certificate"),
        ({"name": ""}, "name"),
    ]
    for fields, field in cases:
        response = create(owner_api, **fields)
        assert response.status_code == 400, fields
        assert field in response.json(), (fields, response.json())
    assert not RegistryAccount.objects.filter(owner=owner).exclude(kind="console").exists()


def test_a_name_is_unique_per_owner(owner_api):
    assert create(owner_api).status_code == 201
    response = create(owner_api)
    assert response.status_code == 400
    assert "name" in response.json()


def test_secrets_survive_key_rotation(owner_api, settings):
    account_id = create(owner_api).json()["id"]
    account = RegistryAccount.objects.get(pk=account_id)
    before = raw_secret(account)
    old_key = settings.CONSOLE_ENCRYPTION_KEYS[0]
    settings.CONSOLE_ENCRYPTION_KEYS = [base64.urlsafe_b64encode(os.urandom(32)).decode(), old_key]
    call_command("rotate_encryption_keys", stdout=open(os.devnull, "w"))
    assert raw_secret(account) != before
    settings.CONSOLE_ENCRYPTION_KEYS = settings.CONSOLE_ENCRYPTION_KEYS[:1]
    assert RegistryAccount.objects.get(pk=account_id).secret == SECRET


def test_a_users_own_account_named_console_is_kept(owner_api, owner, settings):
    assert create(owner_api, name="console").status_code == 201
    names = {item["kind"]: item["name"] for item in owner_api.get(URL).json()["results"]}
    assert names == {"dockerhub": "console", "console": settings.REGISTRY_ADDRESS}
