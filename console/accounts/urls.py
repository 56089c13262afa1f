from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from console.accounts import views

app_name = "accounts"

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password/", views.PasswordChangeView.as_view(), name="password-change"),
    path("password/done/",
         auth_views.PasswordChangeDoneView.as_view(template_name="accounts/password_change_done.html"),
         name="password-change-done"),
    path("tokens/", views.tokens, name="token-list"),
    path("tokens/<int:pk>/revoke/", views.revoke_token, name="token-revoke"),
]
