from __future__ import annotations

from django.urls import reverse

from tests.conftest import PASSWORD


def test_it_logs_in_and_redirects_to_the_dashboard(client, owner):
    response = client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == reverse("dashboard")
    assert client.session["_auth_user_id"] == str(owner.pk)


def test_it_refuses_a_wrong_password(client, owner):
    response = client.post(reverse("accounts:login"), {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert "_auth_user_id" not in client.session


def test_the_dashboard_asks_anonymous_visitors_to_log_in(client, db):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))
