"""Uploading sources through the API: good archives in every format, hostile ones refused with nothing stored."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from builds.models import Source
from tests.builds.archive_factory import HELLO_TREE, tar_bytes, zip_bytes
from tests.builds.conftest import stored_files
from tests.builds.test_archives import HOSTILE


def url(repository) -> str:
    return f"/api/v1/repositories/{repository.pk}/sources/"


def upload(client, repository, data: bytes, name: str = "upload.bin"):
    return client.post(url(repository), {"archive": SimpleUploadedFile(name, data)}, format="multipart")


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz"])
def test_it_stores_a_tar_in_any_compression(owner_api, repository, compression):
    response = upload(owner_api, repository, tar_bytes(HELLO_TREE, compression), "misnamed.zip")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) >= {"id", "repository", "kind", "sha256", "size", "file_count", "commit", "created"}
    assert body["kind"] == "archive"
    assert body["file_count"] == len(HELLO_TREE)
    assert body["commit"] is None
    assert body["archive_format"] == (f"tar.{compression}" if compression else "tar")


def test_it_stores_a_zip(owner_api, repository):
    response = upload(owner_api, repository, zip_bytes(HELLO_TREE), "source.tar")
    assert response.status_code == 201
    assert response.json()["archive_format"] == "zip"
    assert response.json()["file_count"] == len(HELLO_TREE)


def test_the_same_bytes_are_stored_once(owner_api, repository):
    data = tar_bytes(HELLO_TREE, "gz")
    first = upload(owner_api, repository, data).json()
    files_after_first = stored_files()
    second = upload(owner_api, repository, data).json()
    assert first["sha256"] == second["sha256"]
    assert first["id"] != second["id"]
    assert stored_files() == files_after_first
    assert len(files_after_first) == 2  # the normalised tar and its index


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_get_400_and_store_nothing(owner_api, repository, case):
    data, reason = HOSTILE[case]
    response = upload(owner_api, repository, data)
    assert response.status_code == 400
    assert reason in response.json()["detail"] or reason in str(response.json())
    assert not Source.objects.exists()
    assert stored_files() == []


def test_limits_come_from_settings(owner_api, repository, settings):
    settings.CONSOLE_MAX_ARCHIVE_MEMBERS = 2
    response = upload(owner_api, repository, tar_bytes(HELLO_TREE))
    assert response.status_code == 400
    assert "more than 2 members" in response.json()["detail"]
    settings.CONSOLE_MAX_UPLOAD_BYTES = 100
    response = upload(owner_api, repository, tar_bytes(HELLO_TREE))
    assert "larger than 100 bytes" in response.json()["detail"]
    assert stored_files() == []


def test_it_needs_an_archive_or_a_git_url(owner_api, repository):
    response = owner_api.post(url(repository), {}, format="json")
    assert response.status_code == 400
    assert "either" in str(response.json())


def test_it_refuses_both_at_once(owner_api, repository):
    response = owner_api.post(url(repository), {"archive": SimpleUploadedFile("a.tar", tar_bytes(HELLO_TREE)),
                                                "git_url": "file:///tmp/x"}, format="multipart")
    assert response.status_code == 400
    assert not Source.objects.exists()


def test_an_outsider_cannot_upload_into_a_repository(api_client, outsider, repository):
    api_client.force_authenticate(outsider)
    assert upload(api_client, repository, tar_bytes(HELLO_TREE)).status_code == 404
    assert not Source.objects.exists()


def test_it_lists_the_sources_of_a_repository_newest_first(owner_api, repository, hello_source):
    later = upload(owner_api, repository, tar_bytes(HELLO_TREE)).json()
    response = owner_api.get(url(repository))
    assert response.json()["count"] == 2
    assert [s["id"] for s in response.json()["results"]] == [later["id"], hello_source.pk]


def test_sources_are_read_and_deleted_by_their_owner_only(owner_api, api_client, outsider, hello_source):
    api_client.force_authenticate(outsider)
    assert api_client.get(f"/api/v1/sources/{hello_source.pk}/").status_code == 404
    assert api_client.delete(f"/api/v1/sources/{hello_source.pk}/").status_code == 404
    assert owner_api.get(f"/api/v1/sources/{hello_source.pk}/").json()["sha256"] == hello_source.sha256
    assert owner_api.delete(f"/api/v1/sources/{hello_source.pk}/").status_code == 204
    assert stored_files() == []


def test_a_blob_shared_by_two_sources_survives_deleting_one(owner_api, repository):
    data = tar_bytes(HELLO_TREE)
    first = upload(owner_api, repository, data).json()
    upload(owner_api, repository, data)
    owner_api.delete(f"/api/v1/sources/{first['id']}/")
    assert len(stored_files()) == 2


def test_the_service_reads_a_plain_file_object(repository):
    from builds.services.repositories import add_archive_source

    source = add_archive_source(repository, io.BytesIO(tar_bytes(HELLO_TREE)), "x.tar")
    assert source.file_count == len(HELLO_TREE)
