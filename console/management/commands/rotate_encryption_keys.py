from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from console.crypto import DecryptionError, EncryptedTextField, rotate


def encrypted_fields():
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                yield model, field


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the first key of CONSOLE_ENCRYPTION_KEYS."

    @transaction.atomic
    def handle(self, *args, **options):
        total = 0
        for model, field in encrypted_fields():
            table, column = model._meta.db_table, field.column
            pk_column = model._meta.pk.column
            # Raw SQL: the ciphertext itself is rotated, never decrypted into Python objects and saved back.
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT {connection.ops.quote_name(pk_column)}, {connection.ops.quote_name(column)} "
                    f"FROM {connection.ops.quote_name(table)} WHERE {connection.ops.quote_name(column)} <> ''"
                )
                rows = cursor.fetchall()
                for pk, ciphertext in rows:
                    try:
                        rotated = rotate(ciphertext)
                    except DecryptionError as exc:
                        raise CommandError(f"{model._meta.label} #{pk} {field.name}: {exc}") from None
                    cursor.execute(
                        f"UPDATE {connection.ops.quote_name(table)} SET {connection.ops.quote_name(column)} = %s "
                        f"WHERE {connection.ops.quote_name(pk_column)} = %s",
                        [rotated, pk],
                    )
            total += len(rows)
            self.stdout.write(f"{model._meta.label}.{field.name}: {len(rows)} re-encrypted")
        self.stdout.write(f"{total} secrets now encrypted with the first key.")
