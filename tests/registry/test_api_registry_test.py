"""POST /api/v1/registries/{id}/test/: a login that follows the registry's own challenge."""

from __future__ import annotations

import pytest

from registry.models import RegistryAccount
from tests.registry.helpers import account_for

pytestmark = pytest.mark.django_db


def test_it_logs_in_with_basic_auth(owner_api, owner, htpasswd_registry, all_logs, capfd):
    account = account_for(owner, htpasswd_registry)
    response = owner_api.post(f"/api/v1/registries/{account.pk}/test/")
    assert response.status_code == 200
    assert response.json()["ok"] is True
    assert htpasswd_registry.password not in response.content.decode()
    assert htpasswd_registry.password not in all_logs.text
    assert htpasswd_registry.password not in "".join(capfd.readouterr())


def test_a_wrong_password_is_ok_false_with_a_fixed_message(owner_api, owner, htpasswd_registry, all_logs):
    account = account_for(owner, htpasswd_registry, secret="wrong-password-1234")
    response = owner_api.post(f"/api/v1/registries/{account.pk}/test/")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False
    # The console's words, never the registry's (which could be anything an internal service answers).
    assert body["detail"] == "The registry refused these credentials."
    assert "wrong-password-1234" not in response.content.decode() + all_logs.text


def test_an_unreachable_registry_is_ok_false(owner_api, owner):
    account = RegistryAccount.objects.create(owner=owner, name="gone", kind="generic", url="http://127.0.0.1:9",
                                             username="u", secret="p")
    body = owner_api.post(f"/api/v1/registries/{account.pk}/test/").json()
    assert body == {"ok": False, "detail": "http://127.0.0.1:9/v2/ does not answer (connection refused)."}


@pytest.mark.django_db(transaction=True)
def test_the_console_registry_follows_the_bearer_challenge(console_registry, owner_api, owner):
    accounts = owner_api.get("/api/v1/registries/").json()["results"]
    console_id = next(item["id"] for item in accounts if item["kind"] == "console")
    body = owner_api.post(f"/api/v1/registries/{console_id}/test/").json()
    assert body["ok"] is True, body


@pytest.mark.django_db(transaction=True)
def test_a_bearer_challenge_answers_the_token_services_refusal(console_registry, owner):
    # A generic account on the token registry: the client asks the console's realm with Basic credentials.
    good = RegistryAccount.objects.create(owner=owner, name="good", kind="generic", url=console_registry.url,
                                          username="alice", secret="correct horse battery staple")
    bad = RegistryAccount.objects.create(owner=owner, name="bad", kind="generic", url=console_registry.url,
                                         username="alice", secret="nope")
    from registry.services import check_login

    assert check_login(good)[0] is True
    ok, detail = check_login(bad)
    assert ok is False
    assert detail == "The registry's token service refused these credentials."


def test_it_needs_post(owner_api, owner, htpasswd_registry):
    account = account_for(owner, htpasswd_registry)
    assert owner_api.get(f"/api/v1/registries/{account.pk}/test/").status_code == 405
