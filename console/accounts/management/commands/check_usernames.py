"""`manage.py check_usernames [--add-constraint]`: accounts that break the username rules (accounts/usernames.py).

Lists accounts equal without regard to case or Unicode compatibility forms, and names no registry namespace can
hold; exits 1 when there are any. With --add-constraint, adds the unique index on lower(username) that migration
accounts 0002 left out because of duplicates, once they are resolved.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from console.accounts.usernames import DUPLICATE, find_conflicts, has_constraint, username_constraint


class Command(BaseCommand):
    help = "Report accounts whose usernames break the rules; optionally add the case-insensitive unique index."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--add-constraint", action="store_true",
                            help="add the unique index on lower(username) when no duplicates remain")

    def handle(self, *args, add_constraint: bool = False, **options) -> None:
        model = get_user_model()
        conflicts = find_conflicts(model._default_manager.values_list("pk", "username"))
        for conflict in conflicts:
            self.stdout.write(conflict.describe())
        present = has_constraint(connection, model._meta.db_table)
        if add_constraint and not present:
            if any(conflict.kind == DUPLICATE for conflict in conflicts):
                raise CommandError("some accounts differ by case only: rename or remove them first")
            with connection.schema_editor() as editor:
                editor.add_constraint(model, username_constraint())
            present = True
            self.stdout.write("added the unique index on lower(username)")
        self.stdout.write(f"unique index on lower(username): {'present' if present else 'MISSING'}")
        if conflicts:
            raise CommandError(f"{len(conflicts)} username conflict(s)")
