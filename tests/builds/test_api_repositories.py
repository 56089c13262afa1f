from __future__ import annotations

from builds.models import Repository

URL = "/api/v1/repositories/"


def test_it_creates_and_lists_repositories(owner_api, owner, outsider):
    response = owner_api.post(URL, {"name": "my-app", "description": "web"}, format="json")
    assert response.status_code == 201
    assert set(response.json()) == {"id", "name", "description", "created"}
    Repository.objects.create(owner=outsider, name="theirs")
    assert owner_api.post(URL, {"name": "z-later"}, format="json").status_code == 201
    # Newest first, not by name.
    assert [r["name"] for r in owner_api.get(URL).json()["results"]] == ["z-later", "my-app"]


def test_names_are_unique_per_owner(owner_api, owner, outsider):
    Repository.objects.create(owner=outsider, name="my-app")
    assert owner_api.post(URL, {"name": "my-app"}, format="json").status_code == 201
    response = owner_api.post(URL, {"name": "my-app"}, format="json")
    assert response.status_code == 400
    assert "already have a repository" in response.json()["name"][0]
    assert Repository.objects.filter(owner=owner).count() == 1


def test_it_refuses_names_that_cannot_name_an_image(owner_api):
    response = owner_api.post(URL, {"name": "My App!"}, format="json")
    assert response.status_code == 400
    assert "lower-case" in response.json()["name"][0]
    assert not Repository.objects.exists()


def test_it_updates_and_deletes(owner_api, repository):
    response = owner_api.patch(f"{URL}{repository.pk}/", {"description": "changed"}, format="json")
    assert response.status_code == 200
    assert response.json()["description"] == "changed"
    assert owner_api.delete(f"{URL}{repository.pk}/").status_code == 204
    assert not Repository.objects.exists()


def test_renaming_onto_a_taken_name_is_refused(owner_api, owner, repository):
    Repository.objects.create(owner=owner, name="other")
    response = owner_api.patch(f"{URL}{repository.pk}/", {"name": "other"}, format="json")
    assert response.status_code == 400
    repository.refresh_from_db()
    assert repository.name == "hello"


def test_an_outsider_gets_404(api_client, outsider, repository):
    api_client.force_authenticate(outsider)
    assert api_client.get(f"{URL}{repository.pk}/").status_code == 404
    assert api_client.delete(f"{URL}{repository.pk}/").status_code == 404
    assert api_client.patch(f"{URL}{repository.pk}/", {"name": "x"}, format="json").status_code == 404
    assert Repository.objects.filter(pk=repository.pk, name="hello").exists()


def test_anonymous_gets_401(api_client, db):
    assert api_client.get(URL).status_code == 401


def test_put_is_not_offered(owner_api, repository):
    assert owner_api.put(f"{URL}{repository.pk}/", {"name": "x"}, format="json").status_code == 405
