from __future__ import annotations

from django.contrib.auth import get_user_model
from django.urls import reverse

User = get_user_model()


def signup_data(**overrides) -> dict:
    data = {"username": "newcomer", "email": "new@example.com", "password1": "a long enough passphrase",
            "password2": "a long enough passphrase"}
    data.update(overrides)
    return data


def test_it_shows_the_form(client, db):
    response = client.get(reverse("accounts:signup"))
    assert response.status_code == 200
    assert b"Create account" in response.content


def test_it_creates_the_account_and_logs_in(client, db):
    response = client.post(reverse("accounts:signup"), signup_data())
    assert response.status_code == 302
    assert response.url == reverse("dashboard")
    user = User.objects.get(username="newcomer")
    assert user.email == "new@example.com"
    assert client.get(reverse("dashboard")).context["user"] == user


def test_it_refuses_mismatched_passwords(client, db):
    response = client.post(reverse("accounts:signup"), signup_data(password2="something else entirely"))
    assert response.status_code == 200
    assert "password2" in response.context["form"].errors
    assert not User.objects.exists()


def test_it_refuses_a_weak_password(client, db):
    response = client.post(reverse("accounts:signup"), signup_data(password1="password", password2="password"))
    assert "This password is too common." in response.context["form"].errors["password2"]
    assert not User.objects.exists()


def test_it_refuses_a_taken_username(client, owner):
    response = client.post(reverse("accounts:signup"), signup_data(username="alice"))
    assert "username" in response.context["form"].errors
    assert User.objects.count() == 1


def test_it_requires_an_email(client, db):
    response = client.post(reverse("accounts:signup"), signup_data(email=""))
    assert "email" in response.context["form"].errors
    assert not User.objects.exists()


def test_it_refuses_other_methods(client, db):
    assert client.put(reverse("accounts:signup")).status_code == 405
