from __future__ import annotations

from django.urls import reverse

from console.accounts.models import AccessToken
from console.accounts.services import create_access_token


def test_it_creates_a_token_and_shows_it_once(owner_client, owner):
    response = owner_client.post(reverse("accounts:token-list"), {"name": "ci"})
    # Post, redirect, get: the list shows the new token once.
    assert response.status_code == 302
    raw = owner_client.get(response.url).context["new_token"]
    assert raw.startswith("cst_")
    token = AccessToken.objects.get(user=owner)
    assert token.name == "ci"
    assert raw not in token.key_hash
    assert raw.encode() not in owner_client.get(reverse("accounts:token-list")).content


def test_it_revokes_a_token(owner_client, owner):
    token, _ = create_access_token(owner, "old")
    response = owner_client.post(reverse("accounts:token-revoke", args=[token.pk]))
    assert response.status_code == 302
    assert not AccessToken.objects.filter(pk=token.pk).exists()


def test_an_outsider_cannot_revoke_it(client, owner, outsider):
    token, _ = create_access_token(owner, "mine")
    client.force_login(outsider)
    assert client.post(reverse("accounts:token-revoke", args=[token.pk])).status_code == 404
    assert AccessToken.objects.filter(pk=token.pk).exists()


def test_revoking_needs_post(owner_client, owner):
    token, _ = create_access_token(owner, "mine")
    assert owner_client.get(reverse("accounts:token-revoke", args=[token.pk])).status_code == 405
