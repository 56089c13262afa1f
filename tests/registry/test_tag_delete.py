"""Deleting a tag (browse.delete_tag): the page's form (post/redirect/get) and DELETE
/api/v1/registries/{id}/repositories/{name}/tags/{tag}/, against real Distribution registries."""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.urls import reverse

from console.audit.models import AuditEvent
from registry.models import RegistryAccount
from registry.services import browse, ensure_console_account
from registry.tokens import sign_token
from tests.fixtures.registry import start_distribution
from tests.registry.helpers import account_for
from tests.registry.test_tags_page import upload_image

pytestmark = pytest.mark.django_db


def _repository() -> str:
    return f"tags/delete-{secrets.token_hex(4)}"


def _manifest_status(server, repository: str, reference: str, auth=None) -> int:
    accept = "application/vnd.docker.distribution.manifest.v2+json"
    return requests.get(f"{server.url}/v2/{repository}/manifests/{reference}", headers={"Accept": accept},
                        auth=auth).status_code


@pytest.fixture(scope="module")
def undeletable_registry():
    """A Distribution that keeps everything (storage.delete.enabled false, as Distribution's default is)."""
    with tempfile.TemporaryDirectory(prefix="registry-nodelete-") as directory:
        # Distribution reads REGISTRY_<SECTION>_<KEY> over its config file; the process inherits it. Only this
        # one: a registry another test starts later must not.
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("REGISTRY_STORAGE_DELETE_ENABLED", "false")
            server = start_distribution(Path(directory))
        yield server
        server.stop()


# -- the service ---------------------------------------------------------------------------------------------


@pytest.mark.registry
def test_it_refuses_to_delete_an_image_other_tags_point_at(owner, open_registry):
    repository = _repository()
    image = upload_image(open_registry, repository, ["1.0", "latest", "stable"])
    account = account_for(owner, open_registry)
    with pytest.raises(browse.TagShared) as caught:
        browse.delete_tag(owner, account, repository, "1.0", image["digest"])
    assert caught.value.status == 409 and caught.value.others == ["latest", "stable"]
    assert f"{repository}:1.0 is the same image" in str(caught.value)
    assert "would delete them too" in str(caught.value) and "latest, stable" in str(caught.value)
    # Naming only some of them is refused all the same.
    with pytest.raises(browse.TagShared, match="as stable:"):
        browse.delete_tag(owner, account, repository, "1.0", also=["latest"])
    assert _manifest_status(open_registry, repository, "latest") == 200
    assert [tag.name for tag in browse.tags_page(account, repository).tags] == ["1.0", "latest", "stable"]
    assert not AuditEvent.objects.filter(action="registry_tag_deleted").exists()


@pytest.mark.registry
def test_it_deletes_the_image_with_the_tags_named_and_records_it(owner, open_registry):
    repository = _repository()
    image = upload_image(open_registry, repository, ["1.0", "latest"])
    kept = upload_image(open_registry, repository, ["old"], layer_sizes=(20,))
    account = account_for(owner, open_registry)
    assert browse.delete_tag(owner, account, repository, "1.0", image["digest"], also=["latest"]) == image["digest"]
    assert _manifest_status(open_registry, repository, image["digest"]) == 404
    assert [tag.name for tag in browse.tags_page(account, repository).tags] == ["old"]
    assert _manifest_status(open_registry, repository, kept["digest"]) == 200
    event = AuditEvent.objects.get(action="registry_tag_deleted")
    assert event.actor == owner
    assert event.target_label == f"{open_registry.address}/{repository}:1.0"
    assert event.detail == {"registry": account.pk, "repository": repository, "tag": "1.0",
                            "digest": image["digest"], "also": ["latest"]}


@pytest.mark.registry
def test_a_tag_alone_on_its_image_is_deleted_and_the_others_stay(owner, open_registry):
    repository = _repository()
    alone = upload_image(open_registry, repository, ["v1"])
    shared = upload_image(open_registry, repository, ["v2", "latest"], layer_sizes=(60,))
    browse.delete_tag(owner, account_for(owner, open_registry), repository, "v1")
    assert _manifest_status(open_registry, repository, alone["digest"]) == 404
    assert _manifest_status(open_registry, repository, "v2") == 200
    assert _manifest_status(open_registry, repository, shared["digest"]) == 200


# -- deleting a repository -----------------------------------------------------------------------------------


@pytest.mark.registry
def test_it_deletes_every_image_of_a_repository_and_no_other(owner, open_registry):
    repository, neighbour = _repository(), _repository()
    first = upload_image(open_registry, repository, ["a", "b"])
    second = upload_image(open_registry, repository, ["c"], layer_sizes=(70,))
    other = upload_image(open_registry, neighbour, ["a"], layer_sizes=(71,))
    account = account_for(owner, open_registry)
    deleted = browse.delete_repository(owner, account, repository)
    assert deleted.tags == ["a", "b", "c"] and deleted.digests == sorted([first["digest"], second["digest"]])
    assert browse.tags_page(account, repository).tags == []
    assert _manifest_status(open_registry, neighbour, other["digest"]) == 200
    event = AuditEvent.objects.get(action="registry_repository_deleted")
    assert event.detail["tags"] == ["a", "b", "c"]
    with pytest.raises(browse.TagNotFound, match="has no tags"):
        browse.delete_repository(owner, account, repository)


def test_a_repository_of_another_namespace_is_refused(owner):
    with pytest.raises(browse.DeleteRefused, match="Only repositories under alice/"):
        browse.delete_repository(owner, ensure_console_account(owner), "mallory/app")


@pytest.mark.registry
def test_a_tag_that_moved_since_the_page_is_kept(owner, open_registry):
    repository = _repository()
    first = upload_image(open_registry, repository, ["v"])
    upload_image(open_registry, repository, ["v"], layer_sizes=(30,))
    with pytest.raises(browse.TagMoved, match="points at another image now"):
        browse.delete_tag(owner, account_for(owner, open_registry), repository, "v", first["digest"])
    assert _manifest_status(open_registry, repository, "v") == 200
    assert not AuditEvent.objects.filter(action="registry_tag_deleted").exists()


@pytest.mark.registry
def test_a_registry_that_does_not_delete_says_so(owner, undeletable_registry):
    repository = _repository()
    upload_image(undeletable_registry, repository, ["v"])
    with pytest.raises(browse.DeleteRefused, match="^This registry does not allow deleting.$"):
        browse.delete_tag(owner, account_for(owner, undeletable_registry), repository, "v")
    assert _manifest_status(undeletable_registry, repository, "v") == 200


@pytest.mark.registry
def test_basic_auth_deletes_with_the_accounts_credentials(owner, htpasswd_registry):
    repository = _repository()
    image = upload_image(htpasswd_registry, repository, ["v"])
    with pytest.raises(browse.RegistryError, match="refused these credentials"):
        browse.delete_tag(owner, account_for(owner, htpasswd_registry, secret="wrong-4444", name="bad"),
                          repository, "v")
    browse.delete_tag(owner, account_for(owner, htpasswd_registry), repository, "v")
    auth = (htpasswd_registry.username, htpasswd_registry.password)
    assert _manifest_status(htpasswd_registry, repository, image["digest"], auth) == 404


@pytest.mark.registry
@pytest.mark.django_db(transaction=True)
def test_the_console_registry_deletes_in_the_users_namespace(owner, console_registry):
    repository = f"alice/delete-{secrets.token_hex(4)}"
    push = sign_token("alice", settings.REGISTRY_SERVICE,
                      [{"type": "repository", "name": repository, "actions": ["pull", "push"]}])["token"]
    image = upload_image(console_registry, repository, ["v"], headers={"Authorization": f"Bearer {push}"})
    account = ensure_console_account(owner)
    page = browse.tags_page(account, repository)
    assert page.may_delete and [tag.digest for tag in page.tags] == [image["digest"]]
    browse.delete_tag(owner, account, repository, "v", image["digest"])
    assert browse.tags_page(account, repository).tags == []


def test_another_users_namespace_is_refused_before_any_request(owner):
    account = ensure_console_account(owner)
    with pytest.raises(browse.DeleteRefused, match="Only repositories under alice/ are yours to delete from."):
        browse.delete_tag(owner, account, "mallory/app", "v")


def test_an_unknown_tag_on_an_unreachable_registry_is_no_server_error(owner):
    gone = RegistryAccount.objects.create(owner=owner, name="gone", kind="generic", url="http://127.0.0.1:9")
    with pytest.raises(browse.RegistryError, match="does not answer"):
        browse.delete_tag(owner, gone, "team/app", "v")


# -- the page's form -----------------------------------------------------------------------------------------


@pytest.mark.registry
def test_the_form_deletes_and_redirects_to_the_tags(owner_client, owner, open_registry):
    repository = _repository()
    image = upload_image(open_registry, repository, ["v", "w"])
    account = account_for(owner, open_registry)
    url = reverse("registry:registry-tag-delete", args=[account.pk, repository, "v"])
    tags = reverse("registry:registry-tags", args=[account.pk, repository])
    refused = owner_client.post(url, {"digest": image["digest"]}, follow=True).content.decode()
    assert "would delete w too" in refused and "<td>w</td>" in refused
    assert 'name="also" value="w"' in refused
    response = owner_client.post(url, {"digest": image["digest"], "also": "w"})
    assert response.status_code == 302 and response.url == tags
    page = owner_client.get(tags).content.decode()
    assert f"Deleted {repository}:v, {repository}:w ({image['digest']})." in page
    assert "<td>w</td>" not in page and "No tags" in page


@pytest.mark.registry
def test_the_form_shows_why_it_did_not_delete(owner_client, owner, undeletable_registry):
    repository = _repository()
    upload_image(undeletable_registry, repository, ["v"])
    account = account_for(owner, undeletable_registry)
    url = reverse("registry:registry-tag-delete", args=[account.pk, repository, "v"])
    page = owner_client.post(url, follow=True).content.decode()
    assert "This registry does not allow deleting." in page and "<td>v</td>" in page


def test_the_form_refuses_another_namespace(owner_client, owner):
    account = ensure_console_account(owner)
    url = reverse("registry:registry-tag-delete", args=[account.pk, "mallory/app", "v"])
    page = owner_client.post(url, follow=True).content.decode()
    assert "Only repositories under alice/ are yours to delete from." in page
    assert not AuditEvent.objects.filter(action="registry_tag_deleted").exists()


def test_the_form_needs_post_and_the_owner(client, owner, outsider):
    account = ensure_console_account(owner)
    url = reverse("registry:registry-tag-delete", args=[account.pk, "alice/app", "v"])
    client.force_login(owner)
    assert client.get(url).status_code == 405
    client.force_login(outsider)
    assert client.post(url).status_code == 404


# -- the API -------------------------------------------------------------------------------------------------


def _api_url(account, repository: str, tag: str) -> str:
    return f"/api/v1/registries/{account.pk}/repositories/{repository}/tags/{tag}/"


@pytest.mark.registry
def test_the_api_deletes_a_tag(owner_api, owner, open_registry):
    repository = _repository()
    image = upload_image(open_registry, repository, ["v"])
    account = account_for(owner, open_registry)
    response = owner_api.delete(_api_url(account, repository, "v") + f"?digest={image['digest']}")
    assert response.status_code == 200
    assert response.json() == {"name": repository, "tag": "v", "digest": image["digest"], "tags": ["v"]}
    again = owner_api.delete(_api_url(account, repository, "v"))
    assert again.status_code == 404
    assert again.json() == {"detail": f"{repository} has no tag 'v'."}


@pytest.mark.registry
def test_the_api_says_when_the_registry_does_not_delete(owner_api, owner, undeletable_registry):
    repository = _repository()
    upload_image(undeletable_registry, repository, ["v"])
    response = owner_api.delete(_api_url(account_for(owner, undeletable_registry), repository, "v"))
    assert response.status_code == 403
    assert response.json() == {"detail": "This registry does not allow deleting."}


@pytest.mark.registry
def test_the_api_answers_409_when_the_tag_moved(owner_api, owner, open_registry):
    repository = _repository()
    first = upload_image(open_registry, repository, ["v"])
    upload_image(open_registry, repository, ["v"], layer_sizes=(40,))
    response = owner_api.delete(_api_url(account_for(owner, open_registry), repository, "v")
                                + f"?digest={first['digest']}")
    assert response.status_code == 409
    assert "points at another image now" in response.json()["detail"]


@pytest.mark.registry
def test_the_api_answers_409_naming_the_other_tags_on_the_image(owner_api, owner, open_registry):
    repository = _repository()
    image = upload_image(open_registry, repository, ["v", "w"])
    url = _api_url(account_for(owner, open_registry), repository, "v")
    refused = owner_api.delete(url)
    assert refused.status_code == 409
    assert "the same image" in refused.json()["detail"] and "w" in refused.json()["detail"]
    assert _manifest_status(open_registry, repository, "w") == 200
    both = owner_api.delete(url + "?also=w")
    assert both.status_code == 200
    assert both.json() == {"name": repository, "tag": "v", "digest": image["digest"], "tags": ["v", "w"]}
    assert _manifest_status(open_registry, repository, "w") == 404


@pytest.mark.registry
def test_the_api_deletes_a_repository(owner_api, owner, open_registry):
    repository = _repository()
    image = upload_image(open_registry, repository, ["v", "w"])
    account = account_for(owner, open_registry)
    response = owner_api.delete(f"/api/v1/registries/{account.pk}/repositories/{repository}/")
    assert response.status_code == 200
    assert response.json() == {"name": repository, "tags": ["v", "w"], "digests": [image["digest"]]}
    assert _manifest_status(open_registry, repository, image["digest"]) == 404
    # The tag route is still the tag route, not a repository named `.../tags/v`.
    again = owner_api.delete(_api_url(account, repository, "v"))
    assert again.status_code == 404 and again.json() == {"detail": f"{repository} has no tag 'v'."}


def test_the_api_refuses_a_repository_delete_to_others(api_client, owner_api, owner, outsider):
    account = ensure_console_account(owner)
    url = f"/api/v1/registries/{account.pk}/repositories/mallory/app/"
    assert owner_api.delete(url).status_code == 403
    api_client.force_authenticate(outsider)
    assert api_client.delete(f"/api/v1/registries/{account.pk}/repositories/alice/app/").status_code == 404
    assert not AuditEvent.objects.filter(action="registry_repository_deleted").exists()


def test_the_api_refuses_another_namespace_with_403(owner_api, owner):
    response = owner_api.delete(_api_url(ensure_console_account(owner), "mallory/app", "v"))
    assert response.status_code == 403
    assert response.json() == {"detail": "Only repositories under alice/ are yours to delete from."}


@pytest.mark.parametrize(("repository", "tag", "digest", "field", "message"), [
    ("alice/App", "v", "", "repository", "'alice/App' is not a repository name."),
    ("alice/app", "-v", "", "tag", "'-v' is not a tag."),
    ("alice/app", "v", "md5:00", "digest", "'md5:00' is not a sha256 digest."),
])
def test_the_api_answers_400_for_bad_names(owner_api, owner, repository, tag, digest, field, message):
    url = _api_url(ensure_console_account(owner), repository, tag) + (f"?digest={digest}" if digest else "")
    response = owner_api.delete(url)
    assert response.status_code == 400
    assert response.json() == {field: [message]}


def test_the_api_answers_404_to_an_outsider(api_client, owner, outsider):
    account = ensure_console_account(owner)
    api_client.force_authenticate(outsider)
    response = api_client.delete(_api_url(account, "alice/app", "v"))
    assert response.status_code == 404
    assert "detail" in response.json()


def test_the_api_answers_502_when_the_registry_is_gone(owner_api, owner):
    gone = RegistryAccount.objects.create(owner=owner, name="gone", kind="generic", url="http://127.0.0.1:9")
    response = owner_api.delete(_api_url(gone, "team/app", "v"))
    assert response.status_code == 502
    assert "does not answer" in response.json()["detail"]


def test_the_api_needs_a_login(api_client, owner):
    response = api_client.delete(_api_url(ensure_console_account(owner), "alice/app", "v"))
    assert response.status_code in (401, 403)


@pytest.mark.registry
def test_the_repository_form_deletes_and_goes_back_to_the_registry(owner_client, owner, open_registry):
    repository = _repository()
    upload_image(open_registry, repository, ["v", "w"])
    account = account_for(owner, open_registry)
    tags = owner_client.get(reverse("registry:registry-tags", args=[account.pk, repository])).content.decode()
    url = reverse("registry:registry-repository-delete", args=[account.pk, repository])
    assert f'action="{url}"' in tags and "data-confirm=\"Delete" in tags
    response = owner_client.post(url, follow=True)
    assert response.redirect_chain[-1][0] == reverse("registry:registry-detail", args=[account.pk])
    assert f"Deleted {repository}: 2 tags (v, w)." in response.content.decode()


def test_the_repository_form_needs_post_and_the_owner(client, owner, outsider):
    account = ensure_console_account(owner)
    url = reverse("registry:registry-repository-delete", args=[account.pk, "alice/app"])
    client.force_login(owner)
    assert client.get(url).status_code == 405
    client.force_login(outsider)
    assert client.post(url).status_code == 404
