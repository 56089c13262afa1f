"""Usernames unique without regard to case: report the accounts that break the rules, then add the unique index.

What this migration does with accounts made before the rules (console/accounts/usernames.py):
- it renames and deletes nobody. A rename would sign someone out of their own name (their `docker login`, their
  registry namespace and the images in it) without them knowing, and which of two accounts is the "real" `alice`
  is a decision only the operator can make;
- it logs every conflict (warning, logger `console.accounts`): accounts equal without regard to case or Unicode
  compatibility forms (`ALICE` and `alice`), and names no registry namespace can hold (`bob@example.com`);
- it adds the unique index on lower(username) only when no two accounts are equal that way, so that `migrate`
  never fails on such a database. While duplicates remain, sign-up still refuses new look-alikes (the check in
  usernames.validate_new) and sign-in picks only an exact match among them (usernames.find_user); once the
  operator has renamed or removed the extra accounts, `manage.py check_usernames --add-constraint` adds the index.

The index is not part of Django's model state (auth.User is not ours to change); `check_usernames` tells
whether it is there.
"""

from __future__ import annotations

import logging

from django.db import migrations

from console.accounts.usernames import DUPLICATE, find_conflicts, has_constraint, username_constraint

log = logging.getLogger("console.accounts")


def conflicts(apps):
    user = apps.get_model("auth", "User")
    return find_conflicts(user._default_manager.values_list("pk", "username"))


def report_username_conflicts(apps, schema_editor) -> list:
    """Log each conflict; returns them (for tests and the command)."""
    found = conflicts(apps)
    for conflict in found:
        log.warning("username conflict: %s", conflict.describe())
    if found:
        log.warning("%d username conflict(s): nothing was renamed; resolve them, then run "
                    "`manage.py check_usernames --add-constraint`", len(found))
    return found


def add_username_constraint(apps, schema_editor) -> bool:
    """Add the unique index on lower(username) unless duplicates would make it fail; returns whether it did."""
    model = apps.get_model("auth", "User")
    if has_constraint(schema_editor.connection, model._meta.db_table):
        return True
    if any(conflict.kind == DUPLICATE for conflict in conflicts(apps)):
        log.warning("the unique index on lower(username) was NOT added: some accounts differ by case only")
        return False
    schema_editor.add_constraint(model, username_constraint())
    return True


def remove_username_constraint(apps, schema_editor) -> None:
    model = apps.get_model("auth", "User")
    if has_constraint(schema_editor.connection, model._meta.db_table):
        schema_editor.remove_constraint(model, username_constraint())


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunPython(report_username_conflicts, migrations.RunPython.noop),
        migrations.RunPython(add_username_constraint, remove_username_constraint),
    ]
