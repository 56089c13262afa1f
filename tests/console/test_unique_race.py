"""A name two requests take at once: the second passes the service's own "already taken?" check and then hits the
database's unique constraint. That IntegrityError is a 400 naming the field, in the API and in the browser, never
the 503 "database not available" it used to be; a lost database connection stays a 503.

The race is made real without threads: right before the request's INSERT (pre_save, after the service's check),
a rival request's row with the same owner and name is written, as the faster of two requests would have."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
from django.db import IntegrityError, OperationalError, connection, connections, transaction
from django.db.models.signals import pre_save
from django.test import RequestFactory

from builds.models import Repository
from console.views import DatabaseUnavailableMiddleware
from fleet.models import Host
from registry.models import RegistryAccount

# The race writes rows outside the test's own transaction on PostgreSQL (a failed INSERT there aborts it).
pytestmark = pytest.mark.django_db(transaction=True)
# The rival writes from a second connection while the request's transaction is open: SQLite's test database
# locks the table, so these run on PostgreSQL only (make test), not in make test-fast.
races = pytest.mark.postgres


def _create_and_close(model, fields: dict) -> None:
    try:
        model.objects.create(**fields)
    finally:
        connections.close_all()


@contextmanager
def rival_takes(model, name: str, **rival_fields):
    """While inside, the first save of a new `model` row named `name` finds a rival's row of that name there."""
    state = {"raced": False}

    def insert_rival(sender, instance, **kwargs):
        if state["raced"] or getattr(instance, "name", None) != name:
            return
        state["raced"] = True
        # The rival is another request: its own connection (a thread's), committed before this INSERT runs.
        rival = threading.Thread(target=_create_and_close, args=(model, {"name": name, **rival_fields}))
        rival.start()
        rival.join()

    pre_save.connect(insert_rival, sender=model, weak=False)
    try:
        yield state
    finally:
        pre_save.disconnect(insert_rival, sender=model)
    assert state["raced"], "the rival's row was never written: the test did not race"


@pytest.fixture
def no_host_check(monkeypatch):
    monkeypatch.setattr("fleet.tasks.check_host.delay", lambda host_id: None)


HOST = {"name": "edge", "url": "tcp://10.0.0.7:2375"}
HOST_TAKEN = "A host with that name exists already; choose another name."
ACCOUNT = {"name": "hub", "kind": "dockerhub", "username": "alice", "secret": "s3cr3t-0451"}
ACCOUNT_TAKEN = "A registry account with that name exists already; choose another name."


@races
def test_a_host_name_lost_to_a_race_is_a_400_in_the_api(owner_api, owner, no_host_check):
    with rival_takes(Host, "edge", owner=owner, url="tcp://10.0.0.9:2375"):
        answer = owner_api.post("/api/v1/hosts/", HOST, format="json")
    assert answer.status_code == 400, answer.content
    assert answer.json() == {"name": [HOST_TAKEN]}
    assert "Retry-After" not in answer
    assert list(Host.objects.values_list("url", flat=True)) == ["tcp://10.0.0.9:2375"]


@races
def test_a_host_name_lost_to_a_race_is_a_form_error_in_the_browser(owner_client, owner, no_host_check):
    with rival_takes(Host, "edge", owner=owner, url="tcp://10.0.0.9:2375"):
        answer = owner_client.post("/hosts/", HOST)
    assert answer.status_code == 200
    assert HOST_TAKEN in answer.content.decode()
    assert Host.objects.count() == 1


@races
def test_a_registry_name_lost_to_a_race_is_a_400_in_the_api(owner_api, owner):
    with rival_takes(RegistryAccount, "hub", owner=owner, kind="dockerhub", url="docker.io"):
        answer = owner_api.post("/api/v1/registries/", ACCOUNT, format="json")
    assert answer.status_code == 400, answer.content
    assert answer.json() == {"name": [ACCOUNT_TAKEN]}
    assert RegistryAccount.objects.filter(owner=owner, name="hub").count() == 1


@races
def test_a_registry_name_lost_to_a_race_is_a_form_error_in_the_browser(owner_client, owner):
    with rival_takes(RegistryAccount, "hub", owner=owner, kind="dockerhub", url="docker.io"):
        answer = owner_client.post("/registries/new/", ACCOUNT)
    assert answer.status_code == 200
    assert ACCOUNT_TAKEN in answer.content.decode()
    assert RegistryAccount.objects.filter(owner=owner, name="hub").count() == 1


@races
def test_a_repository_name_lost_to_a_race_is_a_400_in_the_api(owner_api, owner):
    with rival_takes(Repository, "web", owner=owner):
        answer = owner_api.post("/api/v1/repositories/", {"name": "web"}, format="json")
    assert answer.status_code == 400, answer.content
    assert answer.json() == {"name": ["You already have a repository named 'web'."]}
    assert Repository.objects.filter(owner=owner).count() == 1


@races
def test_a_repository_name_lost_to_a_race_is_a_form_error_in_the_browser(owner_client, owner):
    with rival_takes(Repository, "web", owner=owner):
        answer = owner_client.post("/repositories/new/", {"name": "web", "description": ""})
    assert answer.status_code == 200
    assert "You already have a repository named" in answer.content.decode()
    assert Repository.objects.filter(owner=owner).count() == 1


# -- the middleware, for a browser view that does not show a form again ------------------------------------------


def _duplicate_host_error(owner) -> IntegrityError:
    Host.objects.create(owner=owner, name="dup", url="tcp://10.0.0.1:2375")
    try:
        with transaction.atomic():
            Host.objects.create(owner=owner, name="dup", url="tcp://10.0.0.2:2375")
    except IntegrityError as exc:
        return exc
    raise AssertionError("the database took the same name twice")


def test_the_middleware_answers_a_lost_race_with_a_400_page(owner):
    request = RequestFactory().post("/hosts/")
    request.user = owner
    answer = DatabaseUnavailableMiddleware(lambda r: None).process_exception(request, _duplicate_host_error(owner))
    assert answer.status_code == 400
    assert HOST_TAKEN in answer.content.decode()


def test_the_middleware_answers_a_lost_race_under_the_api_with_json(owner):
    request = RequestFactory().post("/api/v1/hosts/")
    answer = DatabaseUnavailableMiddleware(lambda r: None).process_exception(request, _duplicate_host_error(owner))
    assert answer.status_code == 400 and answer["Content-Type"] == "application/json"
    assert answer.content.decode() == '{"name": ["' + HOST_TAKEN + '"]}'


def test_another_integrity_error_is_not_taken_for_a_name(owner):
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {Host._meta.db_table} (name) VALUES ('x')")
    except IntegrityError as exc:
        error = exc
    else:
        raise AssertionError("a host without an owner was stored")
    request = RequestFactory().post("/hosts/")
    assert DatabaseUnavailableMiddleware(lambda r: None).process_exception(request, error) is None


def test_a_lost_connection_is_still_a_503():
    request = RequestFactory().get("/api/v1/hosts/")
    answer = DatabaseUnavailableMiddleware(lambda r: None).process_exception(request, OperationalError("gone"))
    assert answer.status_code == 503 and answer["Retry-After"] == "5"
