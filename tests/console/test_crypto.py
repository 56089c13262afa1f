from __future__ import annotations

import base64
import os

import pytest
from django.core.management import call_command
from django.db import connection

from console.crypto import DecryptionError, decrypt, encrypt
from tests.jobapp.models import SecretHolder


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def raw_value(holder: SecretHolder) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT secret FROM {SecretHolder._meta.db_table} WHERE id = %s", [holder.pk])
        return cursor.fetchone()[0]


def test_the_database_never_holds_the_plaintext(db):
    holder = SecretHolder.objects.create(secret="hunter2-registry-password")
    assert "hunter2" not in raw_value(holder)
    assert SecretHolder.objects.get(pk=holder.pk).secret == "hunter2-registry-password"


def test_empty_stays_empty(db):
    holder = SecretHolder.objects.create(secret="")
    assert raw_value(holder) == ""


def test_rotation_keeps_every_secret_readable(db, settings):
    old_key = settings.CONSOLE_ENCRYPTION_KEYS[0]
    holders = [SecretHolder.objects.create(secret=f"secret-{n}") for n in range(3)]
    before = [raw_value(holder) for holder in holders]
    settings.CONSOLE_ENCRYPTION_KEYS = [new_key(), old_key]
    call_command("rotate_encryption_keys", stdout=open(os.devnull, "w"))
    after = [raw_value(holder) for holder in holders]
    assert all(a != b for a, b in zip(after, before, strict=True))
    # Only the new key remains: everything must still decrypt.
    settings.CONSOLE_ENCRYPTION_KEYS = settings.CONSOLE_ENCRYPTION_KEYS[:1]
    assert [SecretHolder.objects.get(pk=h.pk).secret for h in holders] == ["secret-0", "secret-1", "secret-2"]


def test_a_secret_from_an_unknown_key_is_a_clear_error(settings):
    token = encrypt("x")
    settings.CONSOLE_ENCRYPTION_KEYS = [new_key()]
    with pytest.raises(DecryptionError, match="cannot be decrypted"):
        decrypt(token)
