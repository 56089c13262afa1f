"""Pushes and pulls go by their owner's numbers in the browser (each kind counted on its own), by id in URLs and
the API, which adds `number`; the migration numbered the rows made before."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from registry.constants import RegistryKind
from registry.models import Pull, Push
from registry.services.accounts import accounts_for

pytestmark = pytest.mark.django_db


def push(user) -> Push:
    return Push.objects.create(owner=user, registry=accounts_for(user).get(kind=RegistryKind.CONSOLE),
                               image="sha256:" + "1" * 64, repository=f"{user.username}/shop", tag="1")


def pull(user) -> Pull:
    return Pull.objects.create(owner=user, registry=accounts_for(user).get(kind=RegistryKind.CONSOLE),
                               reference=f"{user.username}/shop:1")


@pytest.fixture
def mine(owner, outsider) -> tuple[Push, Pull]:
    """The owner's first push and pull, after the outsider's two of each (which hold the smallest ids)."""
    for _ in range(2):
        push(outsider), pull(outsider)
    first_push, first_pull = push(owner), pull(owner)
    assert (first_push.number, first_pull.number) == (1, 1) and first_push.pk > 2 and first_pull.pk > 2
    return first_push, first_pull


def test_the_transfer_pages_say_the_users_number(owner_client, mine):
    first_push, first_pull = mine
    page = owner_client.get(f"/pushes/{first_push.pk}/").content.decode()
    assert "<title>Push #1" in page and "Push #1 <span" in page and f"Push #{first_push.pk}" not in page
    page = owner_client.get(f"/pulls/{first_pull.pk}/").content.decode()
    assert "Pull #1 <span" in page and f"Pull #{first_pull.pk}" not in page


def test_the_lists_on_the_forms_say_the_users_number(owner_client, owner, mine):
    first_push, first_pull = mine
    second = push(owner)
    pushes = owner_client.get("/pushes/new/").content.decode()
    assert f'<a href="/pushes/{second.pk}/">2</a>' in pushes and f'<a href="/pushes/{first_push.pk}/">1</a>' in pushes
    pulls = owner_client.get("/pulls/new/").content.decode()
    assert f'<a href="/pulls/{first_pull.pk}/">1</a>' in pulls


def test_the_api_keeps_ids_and_adds_the_number(owner_api, mine):
    first_push, first_pull = mine
    for url, row in (("/api/v1/pushes/", first_push), ("/api/v1/pulls/", first_pull)):
        detail = owner_api.get(f"{url}{row.pk}/").json()
        assert (detail["id"], detail["number"]) == (row.pk, 1)
        (listed,) = owner_api.get(url).json()["results"]
        assert (listed["id"], listed["number"]) == (row.pk, 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_migration_numbers_existing_pushes_and_pulls_per_owner(owner, outsider):
    before, after = [("registry", "0001_initial")], [("registry", "0002_per_user_numbers")]
    accounts = {user.pk: accounts_for(user).get(kind=RegistryKind.CONSOLE).pk for user in (owner, outsider)}
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(before)
        old = MigrationExecutor(connection).loader.project_state(before).apps
        OldPush, OldPull = old.get_model("registry", "Push"), old.get_model("registry", "Pull")
        pushes = [OldPush.objects.create(owner_id=user.pk, registry_id=accounts[user.pk], image="x",
                                         repository="r").pk for user in (outsider, owner, owner, outsider, owner)]
        pulls = [OldPull.objects.create(owner_id=user.pk, registry_id=accounts[user.pk], reference="r").pk
                 for user in (owner, outsider)]
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
        # The models as this migration left them: later migrations may add columns the live models have.
        numbered = MigrationExecutor(connection).loader.project_state(after).apps
        numbers = dict(numbered.get_model("registry", "Push").objects.values_list("pk", "number"))
        assert [numbers[pk] for pk in pushes] == [1, 1, 2, 2, 3]
        assert [numbered.get_model("registry", "Pull").objects.get(pk=pk).number for pk in pulls] == [1, 1]
        # New rows go on from the numbers given: the live models (their save numbers rows), on the latest schema.
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
        assert push(outsider).number == 3 and pull(owner).number == 2
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(before)
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
