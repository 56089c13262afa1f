from __future__ import annotations

from django.urls import reverse

from tests.conftest import PASSWORD

NEW = "another fine passphrase"


def test_it_changes_the_password(owner_client, owner):
    response = owner_client.post(
        reverse("accounts:password-change"),
        {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW},
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(NEW)


def test_it_refuses_a_wrong_old_password(owner_client, owner):
    response = owner_client.post(
        reverse("accounts:password-change"),
        {"old_password": "wrong", "new_password1": NEW, "new_password2": NEW},
    )
    assert response.status_code == 200
    assert "old_password" in response.context["form"].errors
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_it_needs_a_login(client, db):
    response = client.get(reverse("accounts:password-change"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))
