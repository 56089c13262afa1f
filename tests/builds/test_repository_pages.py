from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from builds.models import Repository, Source
from tests.builds.archive_factory import HELLO_TREE, tar_bytes
from tests.builds.conftest import stored_files
from tests.builds.test_archives import HOSTILE


def test_the_list_shows_only_the_users_repositories(owner_client, repository, outsider):
    Repository.objects.create(owner=outsider, name="theirs")
    response = owner_client.get(reverse("builds:repository-list"))
    assert response.status_code == 200
    assert list(response.context["repositories"]) == [repository]


def test_it_creates_a_repository(owner_client, owner):
    response = owner_client.post(reverse("builds:repository-create"), {"name": "web", "description": "site"})
    repository = Repository.objects.get(owner=owner, name="web")
    assert response.status_code == 302
    assert response.url == reverse("builds:repository-detail", args=[repository.pk])


def test_a_taken_or_bad_name_is_a_form_error(owner_client, repository):
    response = owner_client.post(reverse("builds:repository-create"), {"name": "hello"})
    assert "already have a repository" in response.context["form"].errors["name"][0]
    response = owner_client.post(reverse("builds:repository-create"), {"name": "Bad Name"})
    assert "lower-case" in response.context["form"].errors["name"][0]
    assert Repository.objects.count() == 1


def test_it_edits_and_deletes(owner_client, repository):
    owner_client.post(reverse("builds:repository-edit", args=[repository.pk]), {"name": "renamed", "description": ""})
    repository.refresh_from_db()
    assert repository.name == "renamed"
    assert owner_client.get(reverse("builds:repository-delete", args=[repository.pk])).status_code == 405
    owner_client.post(reverse("builds:repository-delete", args=[repository.pk]))
    assert not Repository.objects.exists()


def test_an_outsider_gets_404_everywhere(client, outsider, repository):
    client.force_login(outsider)
    for name in ("builds:repository-detail", "builds:repository-edit"):
        assert client.get(reverse(name, args=[repository.pk])).status_code == 404
    for name in ("builds:repository-delete", "builds:source-upload", "builds:source-import-create"):
        assert client.post(reverse(name, args=[repository.pk])).status_code == 404
    assert Repository.objects.filter(pk=repository.pk).exists()


def test_the_upload_form_stores_a_source(owner_client, repository):
    archive = SimpleUploadedFile("hello.tar.gz", tar_bytes(HELLO_TREE, "gz"))
    response = owner_client.post(reverse("builds:source-upload", args=[repository.pk]), {"archive": archive})
    source = Source.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("builds:source-detail", args=[source.pk])


def test_a_hostile_upload_is_a_form_error_and_stores_nothing(owner_client, repository):
    archive = SimpleUploadedFile("evil.tar", tar_bytes([("../../etc/cron.d/x", b"* * * * * root sh")]))
    response = owner_client.post(reverse("builds:source-upload", args=[repository.pk]), {"archive": archive})
    assert response.status_code == 400
    assert "path with '..'" in response.context["upload_form"].errors["archive"][0]
    assert not Source.objects.exists()
    assert stored_files() == []


def test_a_bad_git_url_is_a_form_error(owner_client, repository):
    response = owner_client.post(reverse("builds:source-import-create", args=[repository.pk]), {"git_url": "ftp://x/y"})
    assert response.status_code == 400
    assert "Use an https://" in response.context["git_form"].errors["git_url"][0]
    assert not Source.objects.exists()


def test_pages_need_a_login(client, repository):
    response = client.get(reverse("builds:repository-detail", args=[repository.pk]))
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_every_hostile_archive_is_a_form_error_through_the_browser_form(owner_client, repository, case):
    data, reason = HOSTILE[case]
    archive = SimpleUploadedFile("upload.bin", data)
    response = owner_client.post(reverse("builds:source-upload", args=[repository.pk]), {"archive": archive})
    assert response.status_code == 400
    assert reason in " ".join(response.context["upload_form"].errors["archive"])
    assert not Source.objects.exists()
    assert stored_files() == []
