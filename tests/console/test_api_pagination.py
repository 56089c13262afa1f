"""Every list of the API comes in pages: `{count, next, previous, results}`, `page` and `page_size` (default 50,
at most 500), newest first; a page costs the same queries at 10 rows and at 10,000."""

from __future__ import annotations

import hashlib

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from builds.models import Build, BuildStep, Image, Layer
from builds.services import repositories
from console.accounts.services import create_access_token
from console.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from tests.builds.build_helpers import source_from

pytestmark = pytest.mark.django_db

# Every list endpoint a user reads (build nodes: staff, below); `{repository}` is one of the user's.
USER_LISTS = [
    "/api/v1/audit/", "/api/v1/auth/tokens/", "/api/v1/builds/", "/api/v1/deployments/", "/api/v1/hosts/",
    "/api/v1/images/", "/api/v1/pulls/", "/api/v1/pushes/", "/api/v1/registries/", "/api/v1/repositories/",
    "/api/v1/repositories/{repository}/sources/", "/api/v1/source-imports/",
]


@pytest.fixture
def repository(owner):
    return repositories.create_repository(owner, "paged", "")


def make_builds(owner, repository, count: int) -> None:
    source = source_from(repository, {"Dockerfile": "FROM busybox:1.35.0\n"})
    Build.objects.bulk_create(
        [Build(owner=owner, repository=repository, source=source, status="succeeded", tags=[f"app:{n}"])
         for n in range(count)], batch_size=2000)
    latest = Build.objects.filter(owner=owner).order_by("-pk")[:DEFAULT_PAGE_SIZE]
    BuildStep.objects.bulk_create([BuildStep(build=build, number=1, instruction="FROM busybox:1.35.0",
                                             started_at=build.queued_at) for build in latest])


def make_images(owner, count: int, start: int = 0) -> None:
    images = Image.objects.bulk_create([
        Image(owner=owner, image_id="sha256:" + hashlib.sha256(f"{owner.pk}/{n}".encode()).hexdigest(),
              tags=[f"app:{n}"], labels={"n": str(n)}) for n in range(start, start + count)], batch_size=2000)
    Layer.objects.bulk_create([Layer(image=image, index=0, diff_id=f"sha256:{n:064x}", size=1)
                               for n, image in enumerate(images)], batch_size=2000)


@pytest.mark.parametrize("url", USER_LISTS)
def test_every_list_answers_a_page(owner_api, repository, url):
    body = owner_api.get(url.format(repository=repository.pk)).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert isinstance(body["results"], list) and body["count"] == len(body["results"])


def test_build_nodes_come_in_pages_for_staff(db):
    staff = get_user_model().objects.create_user("root", "root@example.com", "x", is_staff=True)
    client = APIClient()
    client.force_authenticate(staff)
    assert set(client.get("/api/v1/build-nodes/").json()) == {"count", "next", "previous", "results"}


def test_pages_go_newest_first_and_link_to_each_other(owner_api, owner, repository):
    for number in range(5):
        create_access_token(owner, f"token-{number}")
    first = owner_api.get("/api/v1/auth/tokens/?page_size=2").json()
    assert first["count"] == 5 and first["previous"] is None
    assert [token["name"] for token in first["results"]] == ["token-4", "token-3"]
    second = owner_api.get(first["next"]).json()
    assert [token["name"] for token in second["results"]] == ["token-2", "token-1"]
    assert second["previous"] and second["next"]
    last = owner_api.get(second["next"]).json()
    assert [token["name"] for token in last["results"]] == ["token-0"] and last["next"] is None


def test_page_size_has_a_default_and_a_ceiling(owner_api, owner):
    make_images(owner, MAX_PAGE_SIZE + 10)
    assert len(owner_api.get("/api/v1/images/").json()["results"]) == DEFAULT_PAGE_SIZE
    assert len(owner_api.get("/api/v1/images/?page_size=100000").json()["results"]) == MAX_PAGE_SIZE
    # Not a number, or not positive: the default.
    for size in ("abc", "0", "-3"):
        assert len(owner_api.get(f"/api/v1/images/?page_size={size}").json()["results"]) == DEFAULT_PAGE_SIZE


def test_a_page_past_the_end_or_not_a_number_is_a_404_that_says_so(owner_api, owner):
    make_images(owner, 3)
    for page in ("2", "abc", "0"):
        response = owner_api.get(f"/api/v1/images/?page={page}")
        assert response.status_code == 404
        assert "page" in response.json()["detail"].lower()


def test_filters_and_pages_combine_and_the_count_is_of_the_matches(owner_api, owner):
    make_images(owner, 30)
    body = owner_api.get("/api/v1/images/?label=n=7&page_size=5").json()
    assert body["count"] == 1 and [image["tags"] for image in body["results"]] == [["app:7"]]
    body = owner_api.get("/api/v1/images/?label=n&page_size=5&page=2").json()
    assert body["count"] == 30 and len(body["results"]) == 5
    assert body["results"][0]["tags"] == ["app:24"]


def test_the_audit_log_still_takes_limit_and_offset(owner_api, owner):
    for number in range(4):
        repositories.create_repository(owner, f"audited-{number}", "")
    paged = owner_api.get("/api/v1/audit/?page_size=2").json()
    offset = owner_api.get("/api/v1/audit/?limit=2&offset=0").json()
    assert paged["count"] == offset["count"] >= 4
    assert [event["id"] for event in paged["results"]] == [event["id"] for event in offset["results"]]
    assert "offset=2" in offset["next"]


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:200]
    assert len(response.json()["results"]) == min(DEFAULT_PAGE_SIZE, response.json()["count"])
    return len(queries)


def test_a_page_of_builds_or_images_costs_the_same_queries_at_10_and_10000_rows(owner_api, owner, repository):
    make_builds(owner, repository, 10)
    make_images(owner, 10)
    few = {url: queries_for(owner_api, url) for url in ("/api/v1/builds/", "/api/v1/images/",
                                                         "/api/v1/images/?label=n")}
    make_builds(owner, repository, 9990)
    make_images(owner, 9990, start=10)
    many = {url: queries_for(owner_api, url) for url in few}
    assert many == few
    assert owner_api.get("/api/v1/builds/").json()["count"] == 10000
    assert owner_api.get("/api/v1/images/?label=n").json()["count"] == 10000


def make_rows(owner, count: int, start: int) -> None:
    """`count` more of each of the other lists' rows: hosts, deployments (two targets each), registry accounts,
    pushes and pulls, repositories (audited), tokens."""
    from fleet.models import Deployment, DeploymentTarget, Host
    from registry.models import Pull, Push, RegistryAccount

    hosts = Host.objects.bulk_create([Host(owner=owner, name=f"h{n}", url=f"tcp://10.9.0.{n % 250}:2375")
                                      for n in range(start, start + count)])
    deployments = Deployment.objects.bulk_create([Deployment(owner=owner, name=f"app{n}", image="busybox:1.35.0")
                                                  for n in range(start, start + count)])
    DeploymentTarget.objects.bulk_create([DeploymentTarget(deployment=deployment, host=host, host_name=host.name)
                                          for deployment in deployments for host in hosts[:2]])
    accounts = RegistryAccount.objects.bulk_create([
        RegistryAccount(owner=owner, name=f"r{n}", url=f"registry{n}.example:5000")
        for n in range(start, start + count)])
    Push.objects.bulk_create([Push(owner=owner, registry=accounts[0], image="sha256:" + "a" * 64,
                                   repository=f"alice/app{n}", tag="1") for n in range(count)])
    Pull.objects.bulk_create([Pull(owner=owner, registry=accounts[0], reference=f"alice/app{n}:1")
                              for n in range(count)])
    for n in range(start, start + count):
        repositories.create_repository(owner, f"r{n}", "")
        create_access_token(owner, f"t{n}")


OTHER_LISTS = ["/api/v1/audit/", "/api/v1/auth/tokens/", "/api/v1/deployments/", "/api/v1/hosts/",
               "/api/v1/pulls/", "/api/v1/pushes/", "/api/v1/registries/", "/api/v1/repositories/"]


def test_every_other_list_costs_the_same_queries_at_3_and_60_rows(owner_api, owner):
    make_rows(owner, 3, start=0)
    # The first read of the registries makes the console's own account: not part of what a page costs.
    owner_api.get("/api/v1/registries/")
    few = {url: queries_for(owner_api, url) for url in OTHER_LISTS}
    make_rows(owner, 57, start=3)
    many = {url: queries_for(owner_api, url) for url in OTHER_LISTS}
    assert many == few
    assert all(owner_api.get(url).json()["count"] >= 60 for url in OTHER_LISTS)
