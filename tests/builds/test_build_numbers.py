"""Builds and git imports go by their owner's numbers in the browser ("Build #1" for a user whose first build has
a larger id), by id in URLs and the API, which adds `number`; the migration numbered the rows made before."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from builds.models import Build, SourceImport
from tests.builds.test_images_fixtures import make_image
from tests.console.test_list_pages_queries import make_repository, make_source

pytestmark = pytest.mark.django_db


@pytest.fixture
def theirs(outsider):
    """Two builds and a clone of another user's, made first: they hold the smallest ids."""
    source = make_source(make_repository(outsider, "other"))
    for _ in range(2):
        Build.objects.create(owner=outsider, repository=source.repository, source=source)
    SourceImport.objects.create(owner=outsider, repository=source.repository, git_url="https://example.com/o.git")


@pytest.fixture
def first_build(owner, theirs, hello_source) -> Build:
    source = hello_source
    build = Build.objects.create(owner=owner, repository=source.repository, source=source, status="failed")
    assert build.number == 1 and build.pk > 1
    return build


def test_the_build_pages_say_the_users_number(owner_client, first_build):
    detail = owner_client.get(f"/builds/{first_build.pk}/").content.decode()
    assert "<title>Build #1" in detail and "Build #1 <span" in detail
    assert f"Build #{first_build.pk}" not in detail
    listed = owner_client.get("/builds/").content.decode()
    assert f'<a href="/builds/{first_build.pk}/">#1</a>' in listed
    repository = owner_client.get(f"/repositories/{first_build.repository_id}/").content.decode()
    assert f'<a href="/builds/{first_build.pk}/">#1</a>' in repository


def test_the_debug_page_says_the_users_number(owner_client, first_build):
    answer = owner_client.post(f"/builds/{first_build.pk}/debug/", {"command": ""})
    assert answer.status_code == 400
    page = answer.content.decode()
    assert "Debug build #1" in page and f'<a href="/builds/{first_build.pk}/">build #1</a>' in page


def test_the_image_page_names_its_build_by_number(owner_client, owner, first_build):
    image = make_image(owner, "shop", build=first_build)
    page = owner_client.get(f"/images/{image.pk}/").content.decode()
    assert f'<a href="/builds/{first_build.pk}/">build #1</a>' in page


def test_the_clone_page_says_the_users_number(owner_client, owner, theirs):
    repository = make_repository(owner, "shop")
    clone = SourceImport.objects.create(owner=owner, repository=repository, git_url="https://example.com/s.git")
    assert clone.number == 1 and clone.pk > 1
    page = owner_client.get(f"/source-imports/{clone.pk}/").content.decode()
    assert "Clone #1 <span" in page and f"Clone #{clone.pk}" not in page


def test_the_api_keeps_ids_and_adds_the_number(owner_api, owner, first_build):
    detail = owner_api.get(f"/api/v1/builds/{first_build.pk}/").json()
    assert (detail["id"], detail["number"]) == (first_build.pk, 1)
    (listed,) = owner_api.get("/api/v1/builds/").json()["results"]
    assert (listed["id"], listed["number"]) == (first_build.pk, 1)
    clone = SourceImport.objects.create(owner=owner, repository=first_build.repository, git_url="https://e.com/x")
    answer = owner_api.get(f"/api/v1/source-imports/{clone.pk}/").json()
    assert (answer["id"], answer["number"]) == (clone.pk, 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_migration_numbers_existing_builds_and_clones_per_owner(owner, outsider):
    before, after = [("builds", "0010_search_indexes")], [("builds", "0011_per_user_numbers")]
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(before)
        old = MigrationExecutor(connection).loader.project_state(before).apps
        OldRepository, OldSource = old.get_model("builds", "Repository"), old.get_model("builds", "Source")
        OldBuild, OldImport = old.get_model("builds", "Build"), old.get_model("builds", "SourceImport")
        made = []
        for user in (owner, outsider):
            repository = OldRepository.objects.create(owner_id=user.pk, name="shop")
            source = OldSource.objects.create(repository=repository, kind="archive", archive_format="tar",
                                              sha256="0" * 64, size=1)
            made.append((user, repository, source))
        # Interleaved, as users' builds are: ids alternate between the two owners.
        builds = [OldBuild.objects.create(owner_id=user.pk, repository=repository, source=source).pk
                  for user, repository, source in made * 3]
        clones = [OldImport.objects.create(owner_id=user.pk, repository=repository, git_url="https://e.com/x").pk
                  for user, repository, _ in made[::-1]]
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
        # The models as this migration left them: later migrations add columns the live models have.
        numbered = MigrationExecutor(connection).loader.project_state(after).apps
        NumberedBuild = numbered.get_model("builds", "Build")
        NumberedImport = numbered.get_model("builds", "SourceImport")
        numbers = dict(NumberedBuild.objects.values_list("pk", "number"))
        assert [numbers[pk] for pk in builds] == [1, 1, 2, 2, 3, 3]
        assert [NumberedBuild.objects.get(pk=pk).owner_id for pk in builds[:2]] == [owner.pk, outsider.pk]
        assert [NumberedImport.objects.get(pk=pk).number for pk in clones] == [1, 1]
        # New rows go on from the numbers given: the live model (its save numbers rows), on the latest schema.
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
        source = Build.objects.get(pk=builds[0]).source
        assert Build.objects.create(owner=owner, repository=source.repository, source=source).number == 4
        # And back: the field and its constraint go.
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(before)
        with connection.cursor() as cursor:
            columns = [column.name for column in connection.introspection.get_table_description(
                cursor, Build._meta.db_table)]
        assert "number" not in columns
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
