"""console/errors.py: one refusal type, translated once for the API (console.api.exception_handler) and once for
forms (add_domain_error). The services' own error classes are DomainErrors with their old names and signatures."""

from __future__ import annotations

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError

from builds.access import ImageAccessError
from builds.dockerfile.lint import LintError
from builds.services.analysis import NotAnalysed
from builds.services.builds import BuildNotDebuggable, DebugLimitReached
from builds.services.images import ImageInUse
from builds.services.options import OptionError
from builds.services.repositories import RepositoryNameTaken
from builds.sources.archives import ArchiveError
from builds.sources.context import ContextError
from builds.sources.git import GitError
from console.api import exception_handler
from console.errors import DomainError, add_domain_error, api_body
from console.netpolicy import DestinationRefused
from registry.services import RegistryError


@pytest.mark.parametrize("error, status, body", [
    (OptionError("memory_limit", "Too little."), 400, {"memory_limit": ["Too little."]}),
    (ContextError("No Dockerfile."), 400, {"detail": "No Dockerfile."}),
    (ArchiveError("Too big."), 400, {"detail": "Too big."}),
    (GitError("No such ref."), 400, {"detail": "No such ref."}),
    (LintError("Binary file.", line=3), 400, {"detail": "Binary file."}),
    (ImageAccessError("Not yours."), 400, {"detail": "Not yours."}),
    (DestinationRefused("Loopback."), 400, {"detail": "Loopback."}),
    (RepositoryNameTaken("Taken."), 400, {"name": ["Taken."]}),
    (ImageInUse("A container uses it."), 409, {"detail": "A container uses it."}),
    (BuildNotDebuggable("Still running."), 409, {"detail": "Still running."}),
    (NotAnalysed("Not analysed yet."), 409, {"detail": "Not analysed yet."}),
    (DebugLimitReached("One at a time."), 429, {"detail": "One at a time."}),
    (RegistryError("The registry did not answer."), 502, {"detail": "The registry did not answer."}),
])
def test_each_service_error_is_answered_by_the_one_handler(error, status, body):
    assert isinstance(error, DomainError)
    answer = exception_handler(error, {})
    assert (answer.status_code, answer.data) == (status, body)


def test_old_signatures_and_bases_still_hold():
    option = OptionError("tags", "Bad tag.")
    assert (option.field, str(option), option.message) == ("tags", "Bad tag.", "Bad tag.")
    lint = LintError("Does not parse.", line=7)
    assert (lint.message, lint.line, str(lint)) == ("Does not parse.", 7, "Does not parse.")
    # Callers still catch these as the built-in errors they were.
    assert isinstance(DestinationRefused("x"), ValueError)


def test_a_domain_error_may_name_its_field_and_status():
    error = DomainError("Gone.", field="image", status=404)
    assert (error.status, api_body(error)) == (404, {"image": ["Gone."]})
    assert DomainError("Plain.").status == 400 and DomainError("Plain.").field is None


def test_djangos_validation_error_keeps_its_shapes():
    assert exception_handler(ValidationError({"name": "Taken."}), {}).data == {"name": ["Taken."]}
    assert exception_handler(ValidationError("Refused."), {}).data == {"detail": ["Refused."]}


def test_a_lost_connection_is_still_a_503_in_the_api():
    answer = exception_handler(OperationalError("server closed the connection"), {})
    assert answer.status_code == 503 and "not available" in answer.data["detail"]


class NameForm(forms.Form):
    name = forms.CharField()


def _form() -> NameForm:
    form = NameForm({"name": "x"})
    assert form.is_valid()
    return form


def test_a_field_error_goes_on_its_field():
    form = _form()
    add_domain_error(form, OptionError("name", "Bad name."))
    assert form.errors == {"name": ["Bad name."]}


def test_an_error_of_a_field_the_form_lacks_goes_above_the_fields():
    form = _form()
    add_domain_error(form, OptionError("memory_limit", "Too little."))
    assert form.non_field_errors() == ["Too little."] and "name" not in form.errors


def test_a_validation_error_goes_on_its_fields_or_above():
    form = _form()
    add_domain_error(form, ValidationError({"name": "Taken.", "url": "Bad URL."}))
    assert form.errors["name"] == ["Taken."] and form.non_field_errors() == ["Bad URL."]
    form = _form()
    add_domain_error(form, ValidationError("Refused."))
    assert form.non_field_errors() == ["Refused."]


class PartsForm(forms.Form):
    update = forms.CharField(required=False)
    update_order = forms.CharField(required=False)


def test_an_error_of_a_part_goes_on_the_parts_input_when_the_form_has_one():
    form = PartsForm({})
    assert form.is_valid()
    add_domain_error(form, ValidationError({"update": ValidationError("order is one of a, b.", code="order")}))
    add_domain_error(form, ValidationError({"update": ValidationError("delay is seconds.", code="delay")}))
    assert form.errors == {"update_order": ["order is one of a, b."], "update": ["delay is seconds."]}


def test_an_integrity_error_that_is_no_unique_violation_is_raised_again():
    error = IntegrityError("NOT NULL constraint failed: fleet_host.owner_id")
    with pytest.raises(IntegrityError):
        add_domain_error(_form(), error)


def test_a_unique_violation_on_a_name_goes_on_the_name(db):
    form = _form()
    add_domain_error(form, IntegrityError("UNIQUE constraint failed: fleet_host.owner_id, fleet_host.name"))
    assert form.errors == {"name": ["A host with that name exists already; choose another name."]}
