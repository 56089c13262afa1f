"""Deployments go by their owner's numbers in the browser: a new user's first deployment is "web #1" whoever
deployed before, on its page, the list, the image page, in rollbacks ("to release #1") and in messages; URLs and
the API keep ids (the API adds `number`); the migration numbered the rows made before."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from console.constants import JobStatus
from fleet.models import Deployment, Host
from fleet.services import deployments
from registry.constants import RegistryKind
from registry.services.accounts import accounts_for
from tests.builds.test_images_fixtures import make_image

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    sent = []
    monkeypatch.setattr("fleet.tasks.run_deployment.delay",
                        lambda pk: sent.append(pk) or type("Result", (), {"id": ""})())
    return sent


@pytest.fixture
def theirs(outsider):
    """Three deployments of another user's, made first: they hold the smallest ids."""
    for _ in range(3):
        Deployment.objects.create(owner=outsider, name="web", image="x", status=JobStatus.SUCCEEDED)


@pytest.fixture
def host(owner):
    return Host.objects.create(owner=owner, name="h1", url="tcp://127.0.0.1:9")


@pytest.fixture
def releases(owner, theirs, host) -> list[Deployment]:
    """The owner's two successful releases of web: numbers 1 and 2, ids 4 and 5 (or larger)."""
    made = []
    for who in ("first", "second"):
        release = Deployment.objects.create(owner=owner, name="web", image="hello:1", image_id="sha256:" + "a" * 64,
                                            status=JobStatus.SUCCEEDED, env={"WHO": who})
        release.targets.create(host=host, host_name="h1", status=JobStatus.SUCCEEDED)
        made.append(release)
    assert [release.number for release in made] == [1, 2] and made[0].pk > 3
    return made


def test_the_pages_say_the_users_numbers(owner_client, releases):
    first, second = releases
    page = owner_client.get(f"/deployments/{second.pk}/").content.decode()
    assert "<title>web #2" in page and "web #2 <span" in page and f"web #{second.pk}" not in page
    assert "Roll back to release #1</button>" in page and 'data-confirm="Roll back web to release #1 (' in page
    assert f'<a href="/deployments/{first.pk}/">#1</a>' in page  # the releases table
    older = owner_client.get(f"/deployments/{first.pk}/").content.decode()
    assert f'runs now is <a href="/deployments/{second.pk}/">#2</a>' in older
    listed = owner_client.get("/deployments/").content.decode()
    assert f'<a href="/deployments/{first.pk}/">#1</a>' in listed
    assert f'<a href="/deployments/{second.pk}/">#2</a>' in listed


def test_a_rollback_names_its_release_by_number(owner_client, releases, queued, monkeypatch):
    first, second = releases
    monkeypatch.setattr("fleet.services.deployments.resolve_image", lambda owner, image, pulled: (image, image))
    answer = owner_client.post(f"/deployments/{second.pk}/rollback/", follow=True)
    rollback = Deployment.objects.latest("pk")
    assert (rollback.number, rollback.rollback_of) == (3, first)
    page = answer.content.decode()
    assert "Rolling web back to release #1." in page
    assert f'Rolls back to</dt><dd><a href="/deployments/{first.pk}/">#1</a>' in page
    assert "rollback to #1</span>" in owner_client.get("/deployments/").content.decode()


def test_deploying_again_says_the_new_number(owner_client, owner, theirs, host, queued):
    # A deployment pulled from a registry: the engine is not asked about its image.
    account = accounts_for(owner).get(kind=RegistryKind.CONSOLE)
    earlier = Deployment.objects.create(owner=owner, name="web", image="alice/web:1", registry_account_id=account.pk,
                                        status=JobStatus.FAILED)
    earlier.targets.create(host=host, host_name="h1", status=JobStatus.FAILED)
    answer = owner_client.post("/deployments/new/", {"again": earlier.pk}, follow=True)
    again = Deployment.objects.latest("pk")
    assert again.number == 2 and again.pk > 2
    assert "Deploying web again (as #2)." in answer.content.decode()


def test_refusals_name_deployments_by_number(owner_api, owner, theirs, host, queued):
    running = Deployment.objects.create(owner=owner, name="web", image="x", status=JobStatus.RUNNING)
    account = accounts_for(owner).get(kind=RegistryKind.CONSOLE)
    answer = owner_api.post("/api/v1/deployments/", {"name": "web", "image": "alice/web:1", "hosts": [host.pk],
                                                     "registry": account.pk}, format="json")
    assert answer.status_code == 400
    assert answer.json()["name"] == ["web is being deployed right now (#1); wait for it."]
    Deployment.objects.filter(pk=running.pk).update(status=JobStatus.SUCCEEDED)
    answer = owner_api.post(f"/api/v1/deployments/{running.pk}/rollback/")
    assert answer.json() == {"detail": "There is no successful release of web before #1 to roll back to."}
    with pytest.raises(ValidationError, match=r"The hosts of #1 are gone\."):
        deployments.redeploy(Deployment.objects.get(pk=running.pk))


def test_the_image_page_names_its_deployments_by_number(owner_client, owner, theirs):
    image = make_image(owner, "hello", ["a"], tags=["hello:1"])
    deployment = Deployment.objects.create(owner=owner, name="web", image="hello:1", image_id=image.image_id,
                                           status=JobStatus.SUCCEEDED)
    page = owner_client.get(f"/images/{image.pk}/").content.decode()
    assert f'<a href="/deployments/{deployment.pk}/">web #1</a>' in page


def test_the_api_keeps_ids_and_adds_the_number(owner_api, releases):
    first, _ = releases
    detail = owner_api.get(f"/api/v1/deployments/{first.pk}/").json()
    assert (detail["id"], detail["number"]) == (first.pk, 1)
    listed = {row["id"]: row["number"] for row in owner_api.get("/api/v1/deployments/").json()["results"]}
    assert listed == {release.pk: release.number for release in releases}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_migration_numbers_existing_deployments_per_owner(owner, outsider):
    before, after = [("fleet", "0003_search_indexes")], [("fleet", "0004_per_user_numbers")]
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(before)
        old = MigrationExecutor(connection).loader.project_state(before).apps
        OldDeployment = old.get_model("fleet", "Deployment")
        made = [OldDeployment.objects.create(owner_id=user.pk, name="web", image="x").pk
                for user in (outsider, outsider, owner, outsider, owner)]
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
        # The model as this migration left it: later migrations add columns the live model has.
        numbered = MigrationExecutor(connection).loader.project_state(after).apps.get_model("fleet", "Deployment")
        numbers = dict(numbered.objects.values_list("pk", "number"))
        assert [numbers[pk] for pk in made] == [1, 2, 1, 3, 2]
        # New rows go on from the numbers given: the live model (its save numbers rows), on the latest schema.
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
        assert Deployment.objects.create(owner=owner, name="web", image="x").number == 3
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(before)
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
