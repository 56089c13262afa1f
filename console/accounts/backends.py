"""Signing in by username without regard to case or Unicode compatibility forms."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from console.accounts.usernames import find_user


class UsernameBackend(ModelBackend):
    """Django's ModelBackend, with the account found the way sign-up keeps names unique (accounts/usernames.py):
    `alice`, `Alice` and `ＡＬＩＣＥ` name the same account, so each of them signs it in with its password."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        model = get_user_model()
        if username is None:
            username = kwargs.get(model.USERNAME_FIELD)
        if username is None or password is None:
            return None
        user = find_user(username)
        if user is None:
            # Hash anyway, so that a missing account takes as long as a wrong password (ModelBackend does the same).
            model().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
