from __future__ import annotations

import pytest
from django.urls import reverse

from builds.models import Build
from tests.builds.build_helpers import source_from

BOOK = ("FROM node:11.11.0\nLABEL maintainer=\"someone@example.com\"\nUSER root\nENV APP=/app\n"
        "RUN apt-get -y update\nADD . /app\nWORKDIR /app\nRUN npm install\nCMD [\"node\", \"index.js\"]\n")


@pytest.fixture
def source(repository):
    return source_from(repository, {"Dockerfile": "FROM busybox:1.35.0 AS base\nRUN echo hi\n", "book/Dockerfile": BOOK,
                                    ".env": "PASSWORD=x\n"})


def test_the_form_shows_lint_and_context_warnings_before_starting(owner_client, source):
    response = owner_client.get(reverse("builds:build-create", args=[source.pk]) + "?dockerfile=book/Dockerfile")
    assert response.status_code == 200
    checks = response.context["checks"]
    assert {f.rule for f in checks.findings} >= {"CONSOLE004", "DL3020"}
    assert any(w["path"] == ".env" for w in checks.warnings)
    assert "likely secret" in response.content.decode()


def test_it_starts_a_build_with_every_option(owner_client, source, owner):
    """Limits run on the classic builder, which takes no secrets; secrets (and the old secret_args) on BuildKit."""
    response = owner_client.post(reverse("builds:build-create", args=[source.pk]), {
        "dockerfile": "Dockerfile", "path": ".", "tags": "app:1 app:latest", "build_args": "A=1\n# c\nB=two",
        "labels": "team=web", "target": "base", "no_cache": "on",
        "memory_limit": "256m", "cpu_shares": "512", "cpuset_cpus": "0", "timeout": "600"})
    build = Build.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("builds:build-detail", args=[build.pk])
    assert build.tags == ["app:1", "app:latest"]
    assert build.build_args == {"A": "1", "B": "two"}
    assert (build.target, build.no_cache, build.memory_limit, build.cpu_shares, build.cpuset_cpus, build.timeout) == (
        "base", True, "256m", 512, "0", 600)
    assert build.builder == "classic" and "memory or CPU limits" in build.builder_reason
    Build.objects.filter(pk=build.pk).update(status="cancelled")

    response = owner_client.post(reverse("builds:build-create", args=[source.pk]), {
        "dockerfile": "Dockerfile", "path": ".", "secrets": "API_KEY=k3y-for-the-build",
        "secret_args": "TOKEN=hunter2-secret", "builder": "buildkit"})
    build = Build.objects.latest("pk")
    assert response.status_code == 302
    assert build.builder == "buildkit" and build.secret_names == ["API_KEY", "TOKEN"]
    assert build.build_args == {"TOKEN": "****"} and build.secret_args == ["TOKEN"]
    page = owner_client.get(reverse("builds:build-detail", args=[build.pk])).content.decode()
    assert "hunter2-secret" not in page and "k3y-for-the-build" not in page and "TOKEN=****" in page
    assert "API_KEY, TOKEN" in page
    Build.objects.filter(pk=build.pk).update(status="cancelled")

    refused = owner_client.post(reverse("builds:build-create", args=[source.pk]), {
        "dockerfile": "Dockerfile", "path": ".", "secrets": "API_KEY=k3y-for-the-build", "memory_limit": "256m"})
    assert refused.status_code == 400
    assert "need BuildKit" in " ".join(refused.context["form"].errors["secrets"])
    assert Build.objects.count() == 2


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"tags": "Bad Tag!"}, "tags", "is not a valid image name"),
    ({"memory_limit": "huge"}, "memory_limit", "is not a memory size"),
    ({"target": "nope"}, "target", "no stage named"),
    ({"build_args": "no equals sign"}, "build_args", "is not KEY=VALUE"),
    ({"dockerfile": "Nope"}, "dockerfile", "There is no 'Nope'"),
])
def test_bad_options_are_form_errors_and_start_nothing(owner_client, source, data, field, message):
    response = owner_client.post(reverse("builds:build-create", args=[source.pk]),
                                 {"dockerfile": "Dockerfile", "path": ".", **data})
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert not Build.objects.exists()


def test_the_build_page_cancel_and_rebuild(owner_client, source, owner, settings):
    settings.BUILDS_PER_USER = 1
    build = Build.objects.create(owner=owner, repository=source.repository, source=source, tags=["x:1"],
                                 status="running")
    waiting = Build.objects.create(owner=owner, repository=source.repository, source=source)
    page = owner_client.get(reverse("builds:build-detail", args=[waiting.pk]))
    assert page.status_code == 200
    assert "waiting: 1 in line" in page.content.decode()
    assert owner_client.get(reverse("builds:build-cancel", args=[waiting.pk])).status_code == 405
    owner_client.post(reverse("builds:build-cancel", args=[waiting.pk]))
    waiting.refresh_from_db()
    assert waiting.status == "cancelled"
    Build.objects.filter(pk=build.pk).update(status="failed")
    response = owner_client.post(reverse("builds:build-rebuild", args=[build.pk]))
    new = Build.objects.exclude(pk__in=[build.pk, waiting.pk]).get()
    assert response.url == reverse("builds:build-detail", args=[new.pk])
    assert new.rebuild_of_id == build.pk and new.tags == ["x:1"]
    Build.objects.filter(pk=new.pk).update(status="cancelled")


def test_debugging_a_build_that_did_not_fail_is_refused(owner_client, source, owner):
    build = Build.objects.create(owner=owner, repository=source.repository, source=source, status="succeeded")
    response = owner_client.post(reverse("builds:build-debug", args=[build.pk]), {"command": "id"})
    assert response.status_code == 400
    assert "Only a failed build" in response.content.decode()


def test_the_list_and_history_show_only_the_users_builds(owner_client, source, owner, outsider, client):
    mine = Build.objects.create(owner=owner, repository=source.repository, source=source, status="succeeded")
    assert list(owner_client.get(reverse("builds:build-list")).context["builds"]) == [mine]
    repository_page = owner_client.get(reverse("builds:repository-detail", args=[source.repository.pk]))
    assert list(repository_page.context["builds"]) == [mine]
    client.force_login(outsider)
    assert list(client.get(reverse("builds:build-list")).context["builds"]) == []
    for name in ("builds:build-detail",):
        assert client.get(reverse(name, args=[mine.pk])).status_code == 404
    for name in ("builds:build-cancel", "builds:build-rebuild", "builds:build-debug"):
        assert client.post(reverse(name, args=[mine.pk]), {"command": "id"}).status_code == 404
    assert client.get(reverse("builds:build-create", args=[source.pk])).status_code == 404
    assert Build.objects.count() == 1


def test_the_source_lint_endpoint(owner_api, api_client, outsider, source):
    response = owner_api.get(f"/api/v1/sources/{source.pk}/lint/?dockerfile=book/Dockerfile")
    assert response.status_code == 200
    rules = {(f["rule"], f["line"]) for f in response.json()}
    assert ("CONSOLE004", 5) in rules and ("DL3020", 6) in rules
    assert owner_api.get(f"/api/v1/sources/{source.pk}/lint/?dockerfile=Nope").status_code == 400
    api_client.force_authenticate(outsider)
    assert api_client.get(f"/api/v1/sources/{source.pk}/lint/").status_code == 404


def test_the_list_searches_filters_counts_and_pages(owner_client, owner):
    from tests.console.test_list_pages_queries import make_builds, make_repository, make_source

    shop = make_source(make_repository(owner, "shop"))
    make_builds(owner, 55, shop, name="shop", status="failed")
    make_builds(owner, 3, shop, name="shop", status="succeeded", start=55)
    response = owner_client.get(reverse("builds:build-list"), {"q": "shop", "status": "failed"})
    body = response.content.decode()
    assert "55 builds match the filters" in body
    assert len(response.context["builds"]) == 50
    assert 'href="?q=shop&amp;status=failed&amp;page=2"' in body
    assert 'option value="failed" selected' in body
    second = owner_client.get(reverse("builds:build-list"), {"q": "shop", "status": "failed", "page": "2"})
    assert {build.status for build in second.context["builds"]} == {"failed"}
    assert len(second.context["builds"]) == 5


def test_the_list_says_what_to_do_when_empty_and_refuses_a_bad_status(owner_client, owner):
    empty = owner_client.get(reverse("builds:build-list")).content.decode()
    assert "No builds yet" in empty and f'href="{reverse("builds:repository-list")}"' in empty
    bad = owner_client.get(reverse("builds:build-list"), {"status": "nonsense"})
    assert bad.status_code == 400
    assert "is not one of" in bad.content.decode()
    none = owner_client.get(reverse("builds:build-list"), {"q": "nothing-like-it"}).content.decode()
    assert "No builds match these filters" in none and "clear the filters" in none
