from __future__ import annotations

from django.urls import path

from console.accounts.api import views

urlpatterns = [
    path("auth/signup/", views.signup, name="api-signup"),
    path("auth/token/", views.create_token, name="api-token"),
    path("auth/me/", views.me, name="api-me"),
]
