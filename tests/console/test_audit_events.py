"""What the console writes to the audit log today: accounts, tokens, repositories and sources. None holds a
password or a token."""

from __future__ import annotations

import io
import re

import pytest
from django.urls import reverse

from builds.services import repositories as build_services
from console.accounts.models import AccessToken
from console.accounts.services import create_access_token
from console.audit.models import AuditEvent
from tests.builds.archive_factory import HELLO_TREE, tar_bytes
from tests.conftest import PASSWORD

NEW_PASSWORD = "another long passphrase"


@pytest.fixture(autouse=True)
def nothing_secret_is_stored(db):
    yield
    stored = str(list(AuditEvent.objects.values_list()))
    for secret in (PASSWORD, NEW_PASSWORD):
        assert secret not in stored
    # A token's 12-character prefix is public (the tokens page shows it); the token itself is 47 characters.
    assert not re.search(r"cst_[A-Za-z0-9_-]{9,}", stored)


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


def test_signing_up_in_the_browser(client, db):
    client.post(reverse("accounts:signup"), {"username": "newcomer", "email": "n@example.com",
                                             "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    event = AuditEvent.objects.get()
    assert (event.action, event.actor_name, event.detail) == ("signup", "newcomer", {"via": "browser"})
    assert event.address == "127.0.0.1"


def test_signing_up_through_the_api(api_client, db):
    api_client.post(reverse("api-signup"), {"username": "newcomer", "email": "n@example.com",
                                            "password": NEW_PASSWORD}, format="json")
    assert actions() == ["signup"]
    assert AuditEvent.objects.get().detail == {"via": "api"}


def test_signing_in_and_out_in_the_browser(client, owner):
    client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD})
    client.post(reverse("accounts:logout"))
    assert actions() == ["signin", "signout"]
    signin = AuditEvent.objects.get(action="signin")
    assert (signin.actor, signin.detail, signin.target_type) == (owner, {"via": "browser"}, "auth.user")


def test_a_failed_sign_in_for_an_unknown_username(client, db):
    client.post(reverse("accounts:login"), {"username": "ghost", "password": "whatever"})
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.target_label) == ("signin_failed", None, "ghost")


def test_changing_the_password(owner_client, owner):
    response = owner_client.post(reverse("accounts:password-change"), {"old_password": PASSWORD,
                                                                       "new_password1": NEW_PASSWORD,
                                                                       "new_password2": NEW_PASSWORD})
    assert response.status_code == 302
    assert actions() == ["password_changed"]
    assert AuditEvent.objects.get().actor == owner


def test_a_refused_password_change_is_not_recorded(owner_client):
    owner_client.post(reverse("accounts:password-change"), {"old_password": "wrong", "new_password1": NEW_PASSWORD,
                                                   "new_password2": NEW_PASSWORD})
    assert actions() == []


def test_tokens_created_and_revoked_in_the_browser(owner_client, owner):
    owner_client.post(reverse("accounts:token-list"), {"name": "laptop"})
    token = AccessToken.objects.get()
    owner_client.post(reverse("accounts:token-revoke", args=[token.pk]))
    assert actions() == ["token_created", "token_revoked"]
    created = AuditEvent.objects.get(action="token_created")
    assert (created.target_type, created.target_id) == ("accounts.accesstoken", str(token.pk))
    assert created.target_label.startswith("laptop (")


def test_tokens_created_and_revoked_through_the_api(api_client, owner):
    api_client.post(reverse("api-token"), {"username": "alice", "password": PASSWORD, "name": "ci"}, format="json")
    token = AccessToken.objects.get()
    api_client.force_authenticate(owner)
    assert api_client.delete(f"/api/v1/auth/tokens/{token.pk}/").status_code == 204
    assert actions() == ["signin", "token_created", "token_revoked"]
    assert {event.detail["via"] for event in AuditEvent.objects.all()} == {"api"}


def test_an_outsider_revoking_anothers_token_records_nothing(client, owner, outsider):
    token, _ = create_access_token(owner, "x")
    client.force_login(outsider)
    assert client.post(reverse("accounts:token-revoke", args=[token.pk])).status_code == 404
    assert actions() == []


def test_repositories_and_sources(owner):
    repository = build_services.create_repository(owner, "hello")
    source = build_services.add_archive_source(repository, io.BytesIO(tar_bytes(HELLO_TREE, "gz")), "hello.tar.gz")
    repository_id = repository.pk
    build_services.delete_repository(repository)
    assert actions() == ["repository_created", "source_added", "repository_deleted"]
    added = AuditEvent.objects.get(action="source_added")
    assert (added.actor, added.target_type, added.target_id) == (owner, "builds.source", str(source.pk))
    assert added.detail == {"repository": "hello"}
    deleted = AuditEvent.objects.get(action="repository_deleted")
    assert (deleted.target_label, deleted.target_id) == ("hello", str(repository_id))


def test_a_repository_name_taken_records_nothing(owner):
    build_services.create_repository(owner, "hello")
    with pytest.raises(build_services.RepositoryNameTaken):
        build_services.create_repository(owner, "hello")
    assert actions() == ["repository_created"]
