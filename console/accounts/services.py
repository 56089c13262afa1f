"""Accounts: sign-up and personal access tokens, for the browser and the API alike."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from console.accounts import usernames
from console.accounts.models import AccessToken

TOKEN_PREFIX = "cst_"
PREFIX_LENGTH = 12
# Writing last_used on every request would make each read a write; once a minute is precise enough.
LAST_USED_PRECISION = timedelta(minutes=1)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_user(username: str, email: str, password: str) -> AbstractBaseUser:
    """Make an account; the caller has validated the fields (forms or serializers, with accounts/usernames.py).

    Raises ValidationError on `username` when another sign-up took the same name (without regard to case) between
    the caller's check and this insert: the database's unique index on lower(username) decides.
    """
    try:
        with transaction.atomic():
            return get_user_model().objects.create_user(
                username=usernames.normalise(username), email=email, password=password
            )
    except IntegrityError:
        raise ValidationError({"username": [usernames.MESSAGE_TAKEN]}) from None


@transaction.atomic
def create_access_token(user, name: str = "") -> tuple[AccessToken, str]:
    """A new token for `user`; returns the row and the raw token, which is never stored or shown again."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AccessToken.objects.create(
        user=user,
        name=name or f"token {timezone.now():%Y-%m-%d %H:%M}",
        prefix=raw[:PREFIX_LENGTH],
        key_hash=hash_token(raw),
    )
    return token, raw


def user_for_token(raw: str):
    """The active user a raw token belongs to, or None; records when the token was last used."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = AccessToken.objects.select_related("user").filter(key_hash=hash_token(raw)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used is None or now - token.last_used > LAST_USED_PRECISION:
        AccessToken.objects.filter(pk=token.pk).update(last_used=now)
    return token.user


def user_for_credentials(username: str, secret: str, request=None):
    """The user for a username with either the account's password or one of its access tokens (docker login)."""
    user = authenticate(request, username=username, password=secret)
    if user is not None:
        return user
    token_user = user_for_token(secret)
    if token_user is not None and usernames.same_account_name(token_user.get_username(), username):
        return token_user
    return None


def revoke_access_token(token: AccessToken) -> None:
    token.delete()
