"""Per-user numbers (console/numbering.py): each user's builds, git imports, pushes, pulls and deployments are
numbered 1, 2, 3... of their own, each kind on its own; two creations at once for one user both get a number
(PostgreSQL: the unique constraint lets one in, the other takes the next)."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connections
from django.db.models.signals import pre_save

from builds.models import Build, SourceImport
from console.numbering import NumberedPerOwner
from fleet.models import Deployment, Host
from fleet.services import deployments
from registry.constants import RegistryKind
from registry.models import Pull, Push
from registry.services.accounts import accounts_for
from tests.console.test_list_pages_queries import make_builds, make_repository, make_source

pytestmark = pytest.mark.django_db


def new_build(owner, source=None) -> Build:
    source = source or make_source(make_repository(owner, f"app{Build.objects.count()}"))
    return Build.objects.create(owner=owner, repository=source.repository, source=source)


def test_each_user_counts_from_one(owner, outsider):
    mine, theirs = make_source(make_repository(owner)), make_source(make_repository(outsider))
    made = [new_build(user, source) for user, source in
            ((owner, mine), (outsider, theirs), (outsider, theirs), (owner, mine), (owner, mine))]
    assert [(build.owner, build.number) for build in made] == [
        (owner, 1), (outsider, 1), (outsider, 2), (owner, 2), (owner, 3)]
    # Numbers are not ids: the outsider's builds took ids 2 and 3.
    assert [build.number for build in made] != [build.pk for build in made]


def test_each_kind_counts_on_its_own(owner):
    source = make_source(make_repository(owner))
    builds = [new_build(owner, source) for _ in range(2)]
    clone = SourceImport.objects.create(owner=owner, repository=source.repository, git_url="https://example.com/x")
    account = accounts_for(owner).get(kind=RegistryKind.CONSOLE)
    pushes = [Push.objects.create(owner=owner, registry=account, image="sha256:1", repository="alice/x")
              for _ in range(3)]
    pull = Pull.objects.create(owner=owner, registry=account, reference="alice/x")
    deployment = Deployment.objects.create(owner=owner, name="web", image="x")
    assert [build.number for build in builds] == [1, 2]
    assert [push.number for push in pushes] == [1, 2, 3]
    assert (clone.number, pull.number, deployment.number) == (1, 1, 1)
    assert all(isinstance(row, NumberedPerOwner) for row in (builds[0], clone, pushes[0], pull, deployment))


def test_a_number_stays_when_the_row_is_saved_again(owner):
    build = new_build(owner)
    build.status = "running"
    build.save()
    new_build(owner)
    build.refresh_from_db()
    assert build.number == 1
    # One given by hand is kept (a migration's or an import's).
    given = Deployment.objects.create(owner=owner, name="web", image="x", number=7)
    assert given.number == 7 and Deployment.objects.create(owner=owner, name="web", image="x").number == 8


def test_rows_made_in_bulk_have_no_number_and_are_shown_by_id(owner):
    source = make_source(make_repository(owner))
    bulk = make_builds(owner, 2, source)
    assert [build.number for build in bulk] == [None, None]
    assert [build.display_number for build in bulk] == [build.pk for build in bulk]
    later = new_build(owner, source)
    assert (later.number, later.display_number) == (1, 1)
    assert str(later) == f"build #1 of {source.repository.name} (queued)"


def test_a_number_taken_meanwhile_is_retried_with_the_next(owner, monkeypatch):
    """What a lost race looks like from the loser's side: the number it read is taken when it inserts."""
    Deployment.objects.create(owner=owner, name="web", image="x")
    stale = iter([1])
    fresh = Deployment._next_number
    monkeypatch.setattr(Deployment, "_next_number", lambda self: next(stale, None) or fresh(self))
    second = Deployment.objects.create(owner=owner, name="web", image="y")
    assert second.number == 2
    assert sorted(Deployment.objects.values_list("number", flat=True)) == [1, 2]


def test_another_integrity_error_is_not_retried(owner):
    source = make_source(make_repository(owner))
    tries = []
    pre_save.connect(lambda sender, instance, **kwargs: tries.append(instance.number), sender=Build, weak=False,
                     dispatch_uid="count-tries")
    try:
        with pytest.raises(IntegrityError):
            Build.objects.create(owner=owner, repository_id=None, source=source)
    finally:
        pre_save.disconnect(sender=Build, dispatch_uid="count-tries")
    assert tries == [1] and not Build.objects.exists()


# -- two creations at once, on PostgreSQL ------------------------------------------------------------------------


def create_at_once(model, create, count: int = 2) -> tuple[list, int]:
    """Run `create(n)` in `count` threads that all read the owner's highest number before any of them inserts (a
    barrier in pre_save, where the number is chosen and the INSERT not yet sent). Returns (rows, saves tried)."""
    barrier = threading.Barrier(count, timeout=30)
    waited = threading.local()
    tries = []
    rows, errors = [], []

    def hold(sender, instance, **kwargs):
        tries.append(instance.number)
        if not getattr(waited, "done", False):
            waited.done = True
            barrier.wait()

    def run(n: int) -> None:
        try:
            rows.append(create(n))
        except Exception as exc:  # the test reports it below
            errors.append(exc)
        finally:
            connections.close_all()

    pre_save.connect(hold, sender=model, weak=False)
    try:
        threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        pre_save.disconnect(hold, sender=model)
    assert errors == []
    return rows, len(tries)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_builds_at_once_for_one_user_both_get_a_number(owner):
    source = make_source(make_repository(owner))
    rows, tries = create_at_once(Build, lambda n: Build.objects.create(owner=owner, repository=source.repository,
                                                                       source=source))
    assert sorted(build.number for build in rows) == [1, 2]
    assert tries == 3, "both read the same highest number: one of them had to try again"
    assert sorted(Build.objects.values_list("number", flat=True)) == [1, 2]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_deployments_at_once_for_one_user_both_get_a_number(owner, monkeypatch):
    """Through the service, inside its transaction: the lost INSERT is undone to its savepoint, not the whole
    deployment (its targets and audit event are written after it)."""
    monkeypatch.setattr("fleet.tasks.run_deployment.delay", lambda pk: type("Result", (), {"id": "task-1"})())
    host = Host.objects.create(owner=owner, name="h1", url="tcp://10.0.0.7:2375")
    account = accounts_for(owner).get(kind=RegistryKind.CONSOLE)
    rows, tries = create_at_once(Deployment, lambda n: deployments.create_deployment(owner, {
        "name": f"app{n}", "image": "alice/app:1", "registry": account.pk, "hosts": [host.pk]}))
    assert sorted(deployment.number for deployment in rows) == [1, 2]
    assert tries == 3
    assert {deployment.targets.count() for deployment in Deployment.objects.all()} == {1}
