"""Post/redirect/get: every browser form that creates something answers its post with a redirect, so a refresh of
the page the browser lands on asks again with GET and creates nothing."""

from __future__ import annotations

from django.urls import reverse

from builds.models import Repository
from console.accounts.models import AccessToken
from console.accounts.views import NEW_TOKEN_SESSION_KEY
from fleet.models import Host
from registry.models import RegistryAccount


def test_creating_a_token_redirects_and_shows_it_once(owner_client, owner):
    response = owner_client.post(reverse("accounts:token-list"), {"name": "ci"})
    assert response.status_code == 302 and response.url == reverse("accounts:token-list")

    shown = owner_client.get(response.url)
    raw = shown.context["new_token"]
    assert raw.startswith("cst_")
    assert raw in shown.content.decode()
    assert shown["Cache-Control"] == "no-store"
    token = AccessToken.objects.get(user=owner)
    assert token.name == "ci" and raw not in token.key_hash

    # The refresh: a GET of the same page shows the list, not the token, and creates nothing.
    again = owner_client.get(reverse("accounts:token-list"))
    assert again.context["new_token"] is None
    assert raw not in again.content.decode()
    assert AccessToken.objects.filter(user=owner).count() == 1


def test_the_token_waits_in_the_session_encrypted(owner_client):
    owner_client.post(reverse("accounts:token-list"), {"name": "ci"})
    stashed = owner_client.session[NEW_TOKEN_SESSION_KEY]
    assert "cst_" not in str(stashed)
    raw = owner_client.get(reverse("accounts:token-list")).context["new_token"]
    assert raw not in str(stashed)
    assert NEW_TOKEN_SESSION_KEY not in owner_client.session


def test_a_refused_token_form_is_answered_400_and_creates_nothing(owner_client, owner):
    response = owner_client.post(reverse("accounts:token-list"), {"name": "x" * 101})
    assert response.status_code == 400
    assert response.context["form"].errors
    assert not AccessToken.objects.filter(user=owner).exists()


def test_another_users_page_never_shows_the_new_token(client, owner, outsider):
    client.force_login(owner)
    client.post(reverse("accounts:token-list"), {"name": "ci"})
    client.force_login(outsider)  # a new session: the stash stays with the session it was made in
    assert client.get(reverse("accounts:token-list")).context["new_token"] is None


def test_the_token_page_asks_before_revoking(owner_client):
    owner_client.post(reverse("accounts:token-list"), {"name": "laptop"})
    page = owner_client.get(reverse("accounts:token-list")).content.decode()
    assert 'data-confirm="Revoke the token “laptop”?' in page
    assert 'class="copy" data-copy-target="#new-token-value"' in page


def test_creating_a_repository_redirects(owner_client, owner):
    response = owner_client.post(reverse("builds:repository-create"), {"name": "web"})
    repository = Repository.objects.get(owner=owner, name="web")
    assert response.status_code == 302
    assert response.url == reverse("builds:repository-detail", args=[repository.pk])


def test_adding_a_registry_account_redirects(owner_client, owner):
    response = owner_client.post(reverse("registry:registry-create"), {
        "name": "lab", "kind": "generic", "url": "registry.example.com:5000", "username": "u", "secret": "s3"})
    account = RegistryAccount.objects.get(owner=owner, name="lab")
    assert response.status_code == 302
    assert response.url == reverse("registry:registry-detail", args=[account.pk])


def test_adding_a_host_redirects(owner_client, owner):
    # The first check is sent to the worker once the transaction commits (never, in this test's transaction).
    response = owner_client.post(reverse("fleet:host-list"), {"name": "h1", "url": "tcp://10.9.9.9:2375"})
    host = Host.objects.get(owner=owner, name="h1")
    assert response.status_code == 302
    assert response.url == reverse("fleet:host-detail", args=[host.pk])
