"""Usernames (console/accounts/usernames.py): normalised before they are checked, unique without regard to case or
Unicode compatibility forms, and limited to what a registry namespace holds; in the API and the browser alike."""

from __future__ import annotations

import importlib
import logging

import pytest
from django.apps import apps as django_apps
from django.contrib.auth import authenticate, get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from console.accounts import services, usernames
from registry.tokens import namespace_of
from tests.conftest import PASSWORD

User = get_user_model()
migration = importlib.import_module("console.accounts.migrations.0002_username_rules")
NEW_PASSWORD = "a long enough passphrase"

# (what is typed, why it is refused)
REFUSED = [
    ("ＡＬＩＣＥ", usernames.MESSAGE_TAKEN),  # fullwidth: NFKC makes it ALICE, which is alice
    ("Alice", usernames.MESSAGE_TAKEN),
    ("ALICE", usernames.MESSAGE_TAKEN),
    ("ａｌｉｃｅ", usernames.MESSAGE_TAKEN),
    ("alice/../x", usernames.MESSAGE_CHARACTERS),
    ("alice@x", usernames.MESSAGE_CHARACTERS),
    ("ali ce", usernames.MESSAGE_CHARACTERS),
    ("\u0430lice", usernames.MESSAGE_CHARACTERS),  # a Cyrillic а: looks like alice, is not ASCII
    ("bob\u200b", usernames.MESSAGE_CHARACTERS),  # a zero-width space
    ("straße", usernames.MESSAGE_CHARACTERS),
    ("x" * (usernames.USERNAME_MAX_LENGTH + 1), usernames.MESSAGE_TOO_LONG),
    (".alice", usernames.MESSAGE_SEPARATORS),
    ("alice-", usernames.MESSAGE_SEPARATORS),
    ("al..ice", usernames.MESSAGE_SEPARATORS),
    ("al___ice", usernames.MESSAGE_SEPARATORS),
    ("al._ice", usernames.MESSAGE_SEPARATORS),
    # The build farm's cache namespace in the console's registry, in any case or compatibility form.
    ("console-cache", usernames.MESSAGE_RESERVED),
    ("Console-Cache", usernames.MESSAGE_RESERVED),
    ("ｃｏｎｓｏｌｅ-cache", usernames.MESSAGE_RESERVED),
]
ACCEPTED = [
    ("bob", "bob"),
    ("Bob.Smith", "Bob.Smith"),
    ("b__o-b--by_2", "b__o-b--by_2"),
    ("ﬁona", "fiona"),  # the ligature ﬁ is two letters once normalised
    ("ｃａｒｏｌ", "carol"),  # fullwidth, for a name nobody holds: stored as the plain letters
    ("  dave  ", "dave"),
    ("x" * usernames.USERNAME_MAX_LENGTH, "x" * usernames.USERNAME_MAX_LENGTH),
]


def api_signup(api_client, username: str):
    return api_client.post("/api/v1/auth/signup/", {"username": username, "email": "new@example.com",
                                                    "password": NEW_PASSWORD}, format="json")


def browser_signup(client, username: str):
    return client.post(reverse("accounts:signup"), {"username": username, "email": "new@example.com",
                                           "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})


# -- the rules -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("typed", "message"), REFUSED)
def test_validate_new_refuses(owner, typed, message):
    with pytest.raises(ValidationError) as refused:
        usernames.validate_new(typed)
    assert refused.value.messages == [message]


@pytest.mark.parametrize(("typed", "stored"), ACCEPTED)
def test_validate_new_accepts_and_normalises(owner, typed, stored):
    assert usernames.validate_new(typed) == stored


def test_an_empty_name_is_refused(db):
    for typed in ("", "   "):
        with pytest.raises(ValidationError) as refused:
            usernames.validate_new(typed)
        assert refused.value.messages == [usernames.MESSAGE_EMPTY]


def test_every_accepted_name_is_a_registry_namespace(db):
    for _, stored in ACCEPTED:
        assert usernames.NAMESPACE_RE.fullmatch(stored.lower())


# -- sign-up, both faces -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("typed", "message"), REFUSED)
def test_the_api_refuses_with_a_400(api_client, owner, typed, message):
    response = api_signup(api_client, typed)
    assert response.status_code == 400
    assert response.json() == {"username": [message]}
    assert list(User.objects.values_list("username", flat=True)) == ["alice"]


@pytest.mark.parametrize(("typed", "message"), REFUSED)
def test_the_browser_form_refuses_with_a_form_error(client, owner, typed, message):
    response = browser_signup(client, typed)
    assert response.status_code == 200
    assert response.context["form"].errors["username"] == [message]
    assert list(User.objects.values_list("username", flat=True)) == ["alice"]
    assert "_auth_user_id" not in client.session


def test_the_api_names_an_empty_username(api_client, db):
    assert api_signup(api_client, "").json() == {"username": ["This field may not be blank."]}


def test_the_fullwidth_attack_gets_no_account_and_no_namespace(api_client, client, owner):
    """The attack of issue 12: `ＡＬＩＣＥ` was checked as typed, stored as ALICE, and owned the namespace alice."""
    assert api_signup(api_client, "ＡＬＩＣＥ").status_code == 400
    assert browser_signup(client, "ＡＬＩＣＥ").status_code == 200
    assert [namespace_of(user) for user in User.objects.all()] == ["alice"]


@pytest.mark.parametrize("face", ["api", "browser"])
def test_a_compatibility_form_is_stored_normalised(api_client, client, db, face):
    if face == "api":
        response = api_signup(api_client, "ﬁona")
        assert response.status_code == 201 and response.json()["username"] == "fiona"
    else:
        assert browser_signup(client, "ﬁona").status_code == 302
    assert namespace_of(User.objects.get()) == "fiona"


def test_the_browser_form_says_what_is_allowed(client, db):
    assert usernames.HELP_TEXT.encode() in client.get(reverse("accounts:signup")).content


def test_the_database_refuses_a_case_variant_that_skipped_the_checks(owner):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user("ALICE", "x@example.com", PASSWORD)


def test_a_sign_up_that_loses_the_race_is_a_validation_error(owner):
    # The other sign-up won between the form's check and the insert: the unique index decides.
    with pytest.raises(ValidationError) as refused:
        services.create_user("Alice", "x@example.com", PASSWORD)
    assert refused.value.message_dict == {"username": [usernames.MESSAGE_TAKEN]}
    assert User.objects.count() == 1


def test_the_api_answers_400_when_the_race_is_lost(api_client, owner, monkeypatch):
    monkeypatch.setattr(usernames, "is_taken", lambda name, exclude_pk=None: False)
    response = api_signup(api_client, "Alice")
    assert response.status_code == 400
    assert response.json() == {"username": [usernames.MESSAGE_TAKEN]}


def test_the_browser_shows_an_error_when_the_race_is_lost(client, owner, monkeypatch):
    monkeypatch.setattr(usernames, "is_taken", lambda name, exclude_pk=None: False)
    response = browser_signup(client, "Alice")
    assert response.status_code == 200
    assert usernames.MESSAGE_TAKEN in response.context["form"].errors["username"]
    assert User.objects.count() == 1


# -- sign-in -------------------------------------------------------------------------------------------------

@pytest.fixture
def alice_capital(db):
    return User.objects.create_user("Alice", "alice@example.com", PASSWORD)


@pytest.mark.parametrize("typed", ["Alice", "alice", "ALICE", "ＡＬＩＣＥ", " Alice "])
def test_sign_in_does_not_depend_on_case(client, alice_capital, typed):
    assert authenticate(None, username=typed, password=PASSWORD) == alice_capital
    response = client.post(reverse("accounts:login"), {"username": typed, "password": PASSWORD})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(alice_capital.pk)


@pytest.mark.parametrize("typed", ["\u0430lice", "Alice\x00", "alice@x", ""])
def test_look_alikes_sign_nobody_in(alice_capital, typed):
    assert authenticate(None, username=typed, password=PASSWORD) is None


def test_a_wrong_password_in_another_case_is_still_wrong(alice_capital):
    assert authenticate(None, username="alice", password="wrong") is None


def test_the_api_token_endpoint_takes_the_name_in_any_case(api_client, alice_capital):
    response = api_client.post(reverse("api-token"), {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 201


def test_docker_login_takes_a_token_with_the_name_in_any_case(alice_capital):
    _, raw = services.create_access_token(alice_capital)
    assert services.user_for_credentials("alice", raw) == alice_capital
    assert services.user_for_credentials("ALICE", PASSWORD) == alice_capital
    assert services.user_for_credentials("mallory", raw) is None


# -- accounts made before the rules: the migration's report --------------------------------------------------

def editor():
    """A schema editor inside the test's transaction (SQLite's refuses its context manager there; what these
    tests ask of it runs at once, and the transaction's rollback undoes it on PostgreSQL and SQLite alike)."""
    return connection.schema_editor()


@pytest.fixture
def without_constraint(db):
    """The database as it was before migration 0002 (the test's transaction puts the index back)."""
    editor().remove_constraint(User, usernames.username_constraint())
    assert not usernames.has_constraint(connection)


@pytest.fixture
def legacy_accounts(without_constraint):
    # As the old sign-up let them in: a case variant, a name no namespace holds, one never normalised.
    rows = [User.objects.create(username=name) for name in ("alice", "ALICE", "bob@example.com", "ｆｉｘ", "fix")]
    return {user.username: user.pk for user in rows}


def test_the_constraint_is_in_place_after_migrate(db):
    assert usernames.has_constraint(connection)


def test_the_migration_reports_conflicts_and_renames_nobody(legacy_accounts, caplog):
    before = list(User.objects.order_by("pk").values_list("pk", "username"))
    with caplog.at_level(logging.WARNING, logger="console.accounts"):
        found = migration.report_username_conflicts(django_apps, None)
    pk = legacy_accounts
    assert [(conflict.kind, conflict.accounts) for conflict in found] == [
        ("duplicate", ((pk["alice"], "alice"), (pk["ALICE"], "ALICE"))),
        ("duplicate", ((pk["ｆｉｘ"], "ｆｉｘ"), (pk["fix"], "fix"))),
        ("invalid", ((pk["bob@example.com"], "bob@example.com"),)),
        ("invalid", ((pk["ｆｉｘ"], "ｆｉｘ"),)),
    ]
    log = caplog.text
    assert f"#{pk['alice']} 'alice', #{pk['ALICE']} 'ALICE'" in log
    assert "bob@example.com" in log and "nothing was renamed" in log
    assert list(User.objects.order_by("pk").values_list("pk", "username")) == before


def test_the_migration_leaves_the_constraint_out_while_duplicates_remain(legacy_accounts, caplog):
    assert migration.add_username_constraint(django_apps, editor()) is False
    assert not usernames.has_constraint(connection)
    assert "NOT added" in caplog.text


def test_the_migration_adds_the_constraint_when_only_invalid_names_remain(without_constraint):
    User.objects.create(username="bob@example.com")
    assert migration.add_username_constraint(django_apps, editor()) is True
    assert usernames.has_constraint(connection)
    migration.remove_username_constraint(django_apps, editor())
    assert not usernames.has_constraint(connection)


def test_sign_in_among_old_duplicates_takes_only_an_exact_match(legacy_accounts):
    for name in ("alice", "ALICE"):
        user = User.objects.get(username=name)
        user.set_password(PASSWORD)
        user.save()
    assert authenticate(None, username="ALICE", password=PASSWORD).pk == legacy_accounts["ALICE"]
    assert authenticate(None, username="alice", password=PASSWORD).pk == legacy_accounts["alice"]
    assert authenticate(None, username="Alice", password=PASSWORD) is None


@pytest.mark.django_db(transaction=True)
def test_the_command_reports_then_adds_the_constraint_once_resolved(capsys):
    # Transactional: the command's schema editor is the real, atomic one. The index is put back whatever happens.
    try:
        with connection.schema_editor() as schema:
            schema.remove_constraint(User, usernames.username_constraint())
        first, second = (User.objects.create(username=name) for name in ("alice", "ALICE"))
        with pytest.raises(CommandError, match="differ by case only"):
            call_command("check_usernames", "--add-constraint")
        assert f"duplicate: #{first.pk} 'alice', #{second.pk} 'ALICE'" in capsys.readouterr().out
        assert not usernames.has_constraint(connection)
        # The operator's resolution: a rename.
        User.objects.filter(pk=second.pk).update(username="alice2")
        call_command("check_usernames", "--add-constraint")
        out = capsys.readouterr().out
        assert "added the unique index" in out and "present" in out
        assert usernames.has_constraint(connection)
    finally:
        if not usernames.has_constraint(connection):
            User.objects.all().delete()
            with connection.schema_editor() as schema:
                schema.add_constraint(User, usernames.username_constraint())


# -- staff in the admin ---------------------------------------------------------------------------------------

@pytest.fixture
def staff_client(client, db):
    staff = User.objects.create_user("root", "root@example.com", PASSWORD, is_staff=True, is_superuser=True)
    client.force_login(staff)
    return client


def test_staff_adding_a_case_variant_get_a_form_error(staff_client, owner):
    response = staff_client.post("/admin/auth/user/add/", {"username": "ＡＬＩＣＥ", "usable_password": "false"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["username"] == [usernames.MESSAGE_TAKEN]
    assert not User.objects.filter(username__iexact="alice").exclude(pk=owner.pk).exists()


def test_staff_renaming_to_a_bad_name_get_a_form_error(staff_client, owner):
    data = {"username": "alice@x", "email": "alice@example.com", "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00", "is_active": "on"}
    response = staff_client.post(f"/admin/auth/user/{owner.pk}/change/", data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["username"] == [usernames.MESSAGE_CHARACTERS]
    owner.refresh_from_db()
    assert owner.username == "alice"
