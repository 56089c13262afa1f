"""The lists' FilterSets, shared by the browser pages and the API: what each parameter matches, that every bad
value is a form error (a 400 in the API, never a 500), that a NUL in a text matches nothing, and that every list
comes out newest first. Runs on SQLite (fast tier) and PostgreSQL alike: the JSON searches are written for both."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.http import QueryDict

from builds.filters import BuildFilter, ImageFilterSet
from builds.models import Build, Image
from console.audit.constants import Action
from console.audit.filters import AuditEventFilter
from console.audit.models import AuditEvent
from fleet.filters import DeploymentFilter
from fleet.models import Deployment
from tests.console.test_list_pages_queries import (
    START,
    make_builds,
    make_deployments,
    make_events,
    make_images,
    make_repository,
    make_source,
)

pytestmark = pytest.mark.django_db


def query(text: str) -> QueryDict:
    return QueryDict(text)


def images_matching(owner, text: str) -> list[str]:
    search = ImageFilterSet(query(text))
    assert search.is_valid(), search.form.errors
    return [image.tags[0] for image in search.filter_queryset(Image.objects.for_user(owner))]


def image_errors(text: str) -> dict:
    search = ImageFilterSet(query(text))
    assert not search.is_valid()
    return search.form.errors


@pytest.fixture
def image_rows(owner, outsider):
    repository = make_repository(owner)
    make_images(owner, 1, repository, name="web", labels={"team": "Front", "org.opencontainers.title": "Ünïcode"})
    make_images(owner, 1, name="api", labels={"team": "back", "quote": 'say "hi"'}, start=1)
    make_images(owner, 1, name="plain", labels={}, start=2)
    make_images(outsider, 1, name="webtheirs", labels={"team": "Front"})
    return repository


def test_image_search_looks_in_tags_label_keys_and_label_values(owner, image_rows):
    assert images_matching(owner, "q=web") == ["web:0"]
    assert images_matching(owner, "q=FRONT") == ["web:0"]  # case does not matter
    assert images_matching(owner, "q=opencontainers") == ["web:0"]
    assert images_matching(owner, "q=e") == ["api:1", "web:0"]  # newest first
    assert images_matching(owner, "q=%C3%9Cn%C3%AFcode") == ["web:0"]  # non-ASCII, as typed
    assert images_matching(owner, "q=say+%22hi%22") == ["api:1"]  # a quote, found inside its value


def test_image_search_never_matches_the_json_around_the_strings(owner, image_rows):
    # `team": "` would match every labelled image's JSON text if it were not escaped; `, ` or `:` the separators.
    assert images_matching(owner, "q=team%22%3A+%22") == []
    assert images_matching(owner, "q=%2C+") == []
    assert images_matching(owner, "q=%3A") == []
    assert images_matching(owner, "q=%5B%22") == []


def test_image_search_with_a_nul_matches_nothing_and_a_long_one_is_an_error(owner, image_rows):
    assert images_matching(owner, "q=web%00") == []
    assert "q" in image_errors("q=" + "x" * 201)


def test_image_filters_combine(owner, image_rows):
    assert images_matching(owner, f"repository={image_rows.pk}") == ["web:0"]
    assert images_matching(owner, "tag=api") == ["api:1"]
    assert images_matching(owner, "tag=api:1&q=back") == ["api:1"]
    assert images_matching(owner, "label=team=back&q=api") == ["api:1"]
    assert images_matching(owner, "origin=built") == ["plain:2", "api:1", "web:0"]
    assert images_matching(owner, "origin=pulled") == []
    assert images_matching(owner, "origin=built%00") == []


def test_image_dates_are_a_date_or_a_moment(owner, image_rows):
    # make_images creates them a minute apart from START.
    assert images_matching(owner, "created_after=2026-01-01T00:01:00Z") == ["plain:2", "api:1"]
    assert images_matching(owner, "created_before=2026-01-01T00:01:00%2B00:00") == ["web:0"]
    assert images_matching(owner, "created_after=2026-01-01&created_before=2026-01-02") == [
        "plain:2", "api:1", "web:0"]
    assert images_matching(owner, "created_after=2026-01-02") == []
    # Offsets ISO 8601 allows and PostgreSQL does not (past +-15:59) are the same moments in UTC.
    assert images_matching(owner, "created_after=2025-12-31T02:02:00-21:59") == ["plain:2", "api:1"]
    assert images_matching(owner, "created_before=2026-01-01T23:01:00%2B23:00") == ["web:0"]


@pytest.mark.parametrize("text, field", [
    ("repository=abc", "repository"), ("repository=0", "repository"), ("repository=" + "9" * 30, "repository"),
    ("origin=nowhere", "origin"), ("created_after=yesterday", "created_after"),
    ("created_before=2026-13-01", "created_before"), ("created_after=0001-01-01T00:00:00%2B05:00", "created_after"),
    ("created_after=2026-01-01%00", "created_after"), ("tag=Bad+Tag", "tag"),
])
def test_bad_image_filter_values_are_form_errors(text, field):
    assert field in image_errors(text)


def builds_matching(owner, text: str) -> list[int]:
    search = BuildFilter(query(text), queryset=Build.objects.for_user(owner))
    assert search.is_valid(), search.errors
    return [build.pk for build in search.qs]


@pytest.fixture
def builds(owner, outsider):
    app, tool = make_repository(owner, "app"), make_repository(owner, "tool")
    made = {
        "app": make_builds(owner, 2, make_source(app), name="app"),
        "tool": make_builds(owner, 1, make_source(tool), name="tool", status="failed", start=2),
    }
    make_builds(outsider, 1, make_source(make_repository(outsider, "app")), name="app")
    return made


def test_build_search_and_filters(owner, builds):
    app, tool = [b.pk for b in builds["app"]], [b.pk for b in builds["tool"]]
    assert builds_matching(owner, "") == [*tool, *reversed(app)]  # newest first
    assert builds_matching(owner, "q=TOOL") == tool  # the repository's name or a tag
    assert builds_matching(owner, "q=app:1") == [app[1]]
    assert builds_matching(owner, "status=failed") == tool
    assert builds_matching(owner, f"repository={builds['app'][0].repository_id}") == list(reversed(app))
    assert builds_matching(owner, "tag=app:0") == [app[0]]
    assert builds_matching(owner, "tag=app") == list(reversed(app))
    Build.objects.filter(pk=app[0]).update(tags=["app", "other:1"])  # a tag given without its `:tag`
    assert builds_matching(owner, "tag=app") == list(reversed(app))
    assert builds_matching(owner, "tag=other") == [app[0]]
    assert builds_matching(owner, "tag=ap") == []
    assert builds_matching(owner, "created_after=2026-01-01T00:01:00Z&created_before=2026-01-01T00:02:00Z") == [
        app[1]]
    assert builds_matching(owner, "status=succeeded%00") == []
    assert builds_matching(owner, "q=app%00") == []


def test_build_search_by_repository_name_past_the_related_match_limit(owner, builds, monkeypatch):
    """More matching repositories than console.filters looks up by id: the search joins them instead, with the
    same answer, and still only the owner's builds."""
    expected = builds_matching(owner, "q=app")
    assert expected == list(reversed([b.pk for b in builds["app"]]))
    monkeypatch.setattr("console.filters.RELATED_MATCH_LIMIT", 0)
    assert builds_matching(owner, "q=app") == expected
    assert builds_matching(owner, "q=TOOL") == [b.pk for b in builds["tool"]]


@pytest.mark.parametrize("text, field", [
    ("status=nonsense", "status"), ("repository=abc", "repository"), ("repository=-1", "repository"),
    ("created_after=soon", "created_after"), ("tag=a%22b", "tag"), ("q=" + "x" * 201, "q"),
])
def test_bad_build_filter_values_are_form_errors(owner, text, field):
    search = BuildFilter(query(text), queryset=Build.objects.for_user(owner))
    assert not search.is_valid()
    assert field in search.errors


def deployments_matching(owner, text: str) -> list[int]:
    search = DeploymentFilter(query(text), queryset=Deployment.objects.for_user(owner))
    assert search.is_valid(), search.errors
    return [deployment.pk for deployment in search.qs]


def test_deployment_search_and_filters(owner, outsider):
    web = make_deployments(owner, 1, name="web", hosts=("h1",))
    api = make_deployments(owner, 1, name="api", hosts=("h1", "h2"), status="failed", image="registry/api:2")
    make_deployments(outsider, 1, name="web", hosts=("h1",))
    Deployment.objects.filter(pk=web[0].pk).update(created=START)
    Deployment.objects.filter(pk=api[0].pk).update(created=START + timedelta(days=1))
    web_pk, api_pk = web[0].pk, api[0].pk
    assert deployments_matching(owner, "") == [api_pk, web_pk]
    assert deployments_matching(owner, "q=WEB") == [web_pk]
    assert deployments_matching(owner, "q=registry/api") == [api_pk]  # the image asked for
    assert deployments_matching(owner, "name=api-0") == [api_pk]
    assert deployments_matching(owner, "name=api") == []  # the exact app name, as before
    assert deployments_matching(owner, "host=h1") == [api_pk, web_pk]  # each once, whatever its other hosts
    assert deployments_matching(owner, "host=h2") == [api_pk]
    assert deployments_matching(owner, "status=failed") == [api_pk]
    assert deployments_matching(owner, "created_before=2026-01-02") == [web_pk]
    assert deployments_matching(owner, "created_after=2026-01-02") == [api_pk]
    assert deployments_matching(owner, "host=h1%00") == []
    assert deployments_matching(owner, "name=web-0%00") == []


@pytest.mark.parametrize("text, field", [
    ("status=done", "status"), ("created_after=2026-02-30", "created_after"), ("q=" + "x" * 201, "q"),
])
def test_bad_deployment_filter_values_are_form_errors(owner, text, field):
    search = DeploymentFilter(query(text), queryset=Deployment.objects.for_user(owner))
    assert not search.is_valid()
    assert field in search.errors


def test_audit_filters(owner, outsider):
    signins = make_events(owner, 2, label="laptop")
    tokens = make_events(owner, 1, action=Action.TOKEN_CREATED, label="ci")
    make_events(outsider, 1, label="laptop")

    def matching(text: str) -> list[int]:
        search = AuditEventFilter(query(text), queryset=AuditEvent.objects.for_user(owner))
        assert search.is_valid(), search.errors
        return [event.pk for event in search.qs]

    assert matching("") == [tokens[0].pk, signins[1].pk, signins[0].pk]
    assert matching("action=token_created") == [tokens[0].pk]
    assert matching("q=LAPTOP-1") == [signins[1].pk]
    assert matching("q=alice") == [tokens[0].pk, signins[1].pk, signins[0].pk]  # the account's name
    assert matching("created_before=2026-01-01T00:01:00Z") == [tokens[0].pk, signins[0].pk]
    assert matching("q=ci%00") == []
    bad = AuditEventFilter(query("action=nonsense&created_after=never"), queryset=AuditEvent.objects.all())
    assert not bad.is_valid()
    assert set(bad.errors) == {"action", "created_after"}


@pytest.mark.parametrize("url", [
    "/api/v1/builds/?status=nonsense", "/api/v1/builds/?repository=abc", "/api/v1/builds/?created_after=never",
    "/api/v1/deployments/?status=done", "/api/v1/deployments/?created_before=2026-99-01",
    "/api/v1/audit/?created_after=0001-01-01T00:00:00%2B05:00", "/api/v1/images/?q=" + "x" * 201,
    "/api/v1/images/?created_after=never",
])
def test_the_api_answers_a_bad_filter_value_400_naming_it(owner_api, url):
    response = owner_api.get(url)
    assert response.status_code == 400, response.content[:300]
    field = url.split("?", 1)[1].split("=", 1)[0]
    assert field in response.json()


def test_the_api_filters_with_the_same_search(owner_api, owner, image_rows):
    answer = owner_api.get("/api/v1/images/?q=front").json()
    rows = answer["results"]
    assert [row["tags"] for row in rows] == [["web:0"]]
