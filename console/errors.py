"""The console's one kind of refusal, and its two translations: the API's JSON (console/api.py) and a form's
errors (add_domain_error). A service raises a DomainError (or Django's ValidationError, which the same two places
translate); views and API views do not catch either just to translate it.

A DomainError carries a message fit to show the user, the field it is about (None: the request as a whole) and
the HTTP status the API answers (400 unless a subclass says otherwise). In the API a field error is
`{field: [message]}`, any other `{"detail": message}`.

A unique constraint that a request loses (two requests take one name at once: the service's own check passed for
both) arrives as an IntegrityError; unique_violation() makes it the NameTaken the service's check would have
raised, so it is a 400 and not "database not available"."""

from __future__ import annotations

import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError

T = TypeVar("T")


class DomainError(Exception):
    """A request the console refuses; `message` says why, `field` names the input at fault (or None)."""

    status: int = HTTPStatus.BAD_REQUEST.value
    field: str | None = None

    def __init__(self, *args: Any, field: str | None = None, status: int | None = None) -> None:
        super().__init__(*args)
        if field is not None:
            self.field = field
        if status is not None:
            self.status = status

    @property
    def message(self) -> str:
        # Some subclasses (builds.dockerfile.lint.LintError) set their own message; the rest say it as str() would.
        own = self.__dict__.get("_message")
        return own if own is not None else Exception.__str__(self)

    @message.setter
    def message(self, value: str) -> None:
        self.__dict__["_message"] = value


class NotFound(DomainError):
    status = HTTPStatus.NOT_FOUND.value


class Conflict(DomainError):
    """The request is fine but the object's state does not allow it now (in use, finished already...)."""

    status = HTTPStatus.CONFLICT.value


class TooManyRequests(DomainError):
    status = HTTPStatus.TOO_MANY_REQUESTS.value


class UpstreamError(DomainError):
    """Something the console talks to (a registry, a git server) did not answer as needed."""

    status = HTTPStatus.BAD_GATEWAY.value


class NameTaken(DomainError):
    """The owner already has an object of that kind with that name."""

    field = "name"


def api_body(error: DomainError) -> dict[str, Any]:
    """The JSON body the API answers for `error`."""
    return {error.field: [error.message]} if error.field else {"detail": error.message}


# -- unique constraints ----------------------------------------------------------------------------------------

# PostgreSQL (psycopg2's diag.message_detail): 'Key (owner_id, name)=(1, web) already exists.'
POSTGRES_KEY = re.compile(r"Key \((?P<columns>[^)]*)\)=")
# SQLite: 'UNIQUE constraint failed: fleet_host.owner_id, fleet_host.name'
SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (?P<columns>.+)$")
POSTGRES_UNIQUE_VIOLATION = "23505"


def _violated(error: IntegrityError) -> tuple[str, list[str]] | None:
    """(table, columns) of the unique constraint `error` reports, or None if it is another kind of violation."""
    cause = error.__cause__
    if getattr(cause, "pgcode", None) == POSTGRES_UNIQUE_VIOLATION:
        diag = cause.diag
        match = POSTGRES_KEY.search(diag.message_detail or "")
        columns = [name.strip() for name in match["columns"].split(",")] if match else []
        return diag.table_name or "", columns
    match = SQLITE_UNIQUE.search(str(error))
    if match:
        qualified = [name.strip() for name in match["columns"].split(",")]
        table = qualified[0].rpartition(".")[0] if qualified else ""
        return table, [name.rpartition(".")[2] for name in qualified]
    return None


def _noun(table: str) -> str:
    from django.apps import apps

    for model in apps.get_models():
        if model._meta.db_table == table:
            return str(model._meta.verbose_name)
    return "record"


def unique_violation(error: IntegrityError) -> DomainError | None:
    """The refusal a lost unique-name race stands for (a 400), or None when `error` is no unique violation."""
    violated = _violated(error)
    if violated is None:
        return None
    table, columns = violated
    noun = _noun(table)
    article = "An" if noun[:1].lower() in "aeiou" else "A"
    if "name" in columns:
        return NameTaken(f"{article} {noun} with that name exists already; choose another name.")
    return DomainError(f"That {noun} exists already.")


def check_name_free(owned, name: str, instance=None, *, noun: str) -> None:
    """A service's own check before it saves a name: ValidationError on `name` when another of `owned` (the
    owner's objects of one kind; `instance`, the one being changed, does not count) has it already."""
    others = owned.filter(name=name)
    if instance is not None:
        others = others.exclude(pk=instance.pk)
    if others.exists():
        raise ValidationError({"name": f"You already have {noun} named {name!r}."})


# -- forms -----------------------------------------------------------------------------------------------------

# What a browser view catches around a service call to show it on the form (add_domain_error translates each).
FORM_ERRORS = (DomainError, ValidationError, IntegrityError)


def add_domain_error(form, error: Exception) -> None:
    """Show a service's refusal on the form: on the field it names when the form has that field, else above the
    fields. Takes a DomainError, Django's ValidationError, or an IntegrityError from a unique constraint (any
    other IntegrityError is a bug and is raised again)."""
    if isinstance(error, IntegrityError):
        refusal = unique_violation(error)
        if refusal is None:
            raise error
        error = refusal
    if isinstance(error, DomainError):
        form.add_error(error.field if error.field in form.fields else None, error.message)
        return
    if isinstance(error, ValidationError):
        if hasattr(error, "error_dict"):
            for field, errors in error.error_dict.items():
                for each in errors:
                    # A refusal of one part of a setting (code "order" of field "update") goes to the form's input
                    # for that part (`update_order`) when it has one.
                    part = f"{field}_{each.code}" if isinstance(each.code, str) else ""
                    target = part if part in form.fields else field if field in form.fields else None
                    form.add_error(target, list(each))
        else:
            form.add_error(None, error.messages)
        return
    raise TypeError(f"add_domain_error takes a refusal, not {type(error).__name__}")


def run_form(request, form, service: Callable[[dict[str, Any]], T]) -> T | None:
    """A browser view's form around one service call: for a POST whose form is valid, what
    `service(form.cleaned_data)` returns. None when there is nothing to act on (a GET, an invalid form) or the
    service refused (FORM_ERRORS, put on the form by add_domain_error): the view shows the form again."""
    if request.method != "POST" or not form.is_valid():
        return None
    try:
        return service(form.cleaned_data)
    except FORM_ERRORS as exc:
        add_domain_error(form, exc)
        return None
