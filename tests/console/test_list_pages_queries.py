"""The four browser lists (images, builds, deployments, audit log) cost the same number of queries per page at 10
rows and at 10,000: the page is sliced in the database, its rows' relations come in with it (select_related,
prefetch_related), and the total is one COUNT. The factories here make rows in bulk; the FilterSet and browser
tests use them too."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from builds.models import Build, Image, Repository, Source
from console.audit.constants import Action
from console.audit.models import AuditEvent
from console.listing import PAGE_SIZE
from fleet.models import Deployment, DeploymentTarget

BATCH = 2000
START = datetime(2026, 1, 1, tzinfo=UTC)


def make_repository(owner, name: str = "app") -> Repository:
    return Repository.objects.create(owner=owner, name=name)


def make_source(repository: Repository) -> Source:
    return Source.objects.create(repository=repository, kind="archive", archive_format="tar", sha256="0" * 64,
                                 size=10)


def make_images(owner, count: int, repository: Repository | None = None, name: str = "app",
                labels: dict | None = None, start: int = 0) -> list[Image]:
    """`count` images tagged `<name>:<n>`, created a minute apart from START (n from `start`)."""
    rows = [Image(owner=owner, repository=repository, tags=[f"{name}:{n}"],
                  image_id="sha256:" + hashlib.sha256(f"{owner.pk}/{name}/{n}".encode()).hexdigest(),
                  labels={"team": name, "serial": str(n)} if labels is None else labels,
                  created=START + timedelta(minutes=n), size=1000 + n)
            for n in range(start, start + count)]
    return Image.objects.bulk_create(rows, batch_size=BATCH)


def make_builds(owner, count: int, source: Source, name: str = "app", status: str = "succeeded",
                start: int = 0) -> list[Build]:
    rows = [Build(owner=owner, repository=source.repository, source=source, tags=[f"{name}:{n}"], status=status,
                  queued_at=START + timedelta(minutes=n)) for n in range(start, start + count)]
    return Build.objects.bulk_create(rows, batch_size=BATCH)


def make_deployments(owner, count: int, name: str = "web", hosts: tuple[str, ...] = ("h1", "h2"),
                     status: str = "succeeded", image: str = "busybox:1.35.0") -> list[Deployment]:
    deployments = Deployment.objects.bulk_create(
        [Deployment(owner=owner, name=f"{name}-{n % 7}", image=image, status=status) for n in range(count)],
        batch_size=BATCH)
    DeploymentTarget.objects.bulk_create(
        [DeploymentTarget(deployment=deployment, host_name=host, status=status)
         for deployment in deployments for host in hosts], batch_size=BATCH)
    return deployments


def make_events(owner, count: int, action: str = Action.SIGNIN, label: str = "alice") -> list[AuditEvent]:
    rows = [AuditEvent(actor=owner, actor_name=owner.username, action=action, target_label=f"{label}-{n}",
                       created=START + timedelta(minutes=n)) for n in range(count)]
    return AuditEvent.objects.bulk_create(rows, batch_size=BATCH)


def add_rows(owner, count: int, offset: int) -> None:
    """`count` rows more in each of the four lists."""
    repository = Repository.objects.filter(owner=owner).first() or make_repository(owner)
    make_images(owner, count, repository, start=offset)
    make_builds(owner, count, Source.objects.filter(repository=repository).first() or make_source(repository),
                start=offset)
    make_deployments(owner, count)
    make_events(owner, count)


LISTS = [
    ("builds:image-list", {}),
    ("builds:image-list", {"q": "team", "page": "2"}),
    ("builds:build-list", {}),
    ("builds:build-list", {"q": "app:", "status": "succeeded", "page": "2"}),
    ("fleet:deployment-list", {}),
    ("fleet:deployment-list", {"host": "h1", "q": "web", "page": "2"}),
    ("audit:event-list", {}),
    ("audit:event-list", {"action": "signin", "q": "alice", "page": "2"}),
]


def count_queries(client, url_name: str, params: dict) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse(url_name), params)
    assert response.status_code == 200, response.content[:500]
    return len(queries), response.content.decode()


@pytest.mark.django_db
def test_each_list_page_costs_the_same_queries_at_10_and_at_10000_rows(owner_client, owner):
    add_rows(owner, 10, 0)
    small = {(name, tuple(params.items())): count_queries(owner_client, name, params) for name, params in LISTS}
    add_rows(owner, 9990, 10)
    for name, params in LISTS:
        queries, body = count_queries(owner_client, name, params)
        before, small_body = small[(name, tuple(params.items()))]
        assert queries == before, f"{name} {params}: {before} queries at 10 rows, {queries} at 10,000"
        # And the page is a page: the count says 10,000 (or the filtered total) and the pager links on.
        if not params:
            assert "10000 " in body and "10 " in small_body
            assert 'rel="next"' in body


@pytest.mark.django_db
def test_a_page_of_rows_is_at_most_the_page_size(owner_client, owner):
    add_rows(owner, PAGE_SIZE + 5, 0)
    for name, context_key in (("builds:image-list", "images"), ("builds:build-list", "builds"),
                              ("fleet:deployment-list", "deployments"), ("audit:event-list", "page")):
        first = owner_client.get(reverse(name))
        assert len(first.context[context_key]) == PAGE_SIZE
        last = owner_client.get(reverse(name), {"page": "2"})
        assert len(last.context[context_key]) == 5


@pytest.mark.django_db
@pytest.mark.parametrize("params, status", [
    ({"page": "999999"}, 200), ({"page": "abc"}, 200), ({"page": "-1"}, 200), ({"q": "x\x00y"}, 200),
    ({"q": "x" * 201}, 400), ({"created_after": "0001-01-01T00:00:00+05:00"}, 400),
    ({"created_before": "9999-12-31T23:00:00-05:00"}, 400), ({"created_after": "2026-01-01\x00"}, 400),
])
def test_no_value_of_a_list_parameter_is_a_server_error(owner_client, owner, params, status):
    add_rows(owner, 3, 0)
    for name, _params in LISTS[::2]:
        response = owner_client.get(reverse(name), params)
        assert response.status_code == status, (name, params, response.content[:300])
        if params.get("q", "").count("\x00"):
            assert "match these filters" in response.content.decode()
