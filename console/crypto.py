"""Secrets at rest: registry passwords, tokens and TLS keys are encrypted with CONSOLE_ENCRYPTION_KEYS.

The keys form a MultiFernet: the first key encrypts, every key decrypts, so an operator adds a new key in
front, runs `manage.py rotate_encryption_keys`, and then drops the old key.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


class DecryptionError(Exception):
    """A stored secret cannot be read with any configured key."""


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in settings.CONSOLE_ENCRYPTION_KEYS])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "A stored secret cannot be decrypted with CONSOLE_ENCRYPTION_KEYS: was a key removed too early?"
        ) from None


def rotate(token: str) -> str:
    """The same secret encrypted with the first key."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("A stored secret cannot be decrypted with any key in CONSOLE_ENCRYPTION_KEYS") from None


class EncryptedTextField(models.TextField):
    """A text column holding a Fernet token; Python code sees the plaintext. Empty stays empty."""

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt(value)
