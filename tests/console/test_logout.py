from __future__ import annotations

from django.urls import reverse


def test_it_logs_out_on_post(owner_client):
    response = owner_client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in owner_client.session


def test_it_refuses_get(owner_client):
    assert owner_client.get(reverse("accounts:logout")).status_code == 405
    assert "_auth_user_id" in owner_client.session
