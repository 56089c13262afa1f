"""A repository's tags page (and its service, browse.tags_page): per tag its digest, size, created date and pull
command, a page at a time, read from a real Distribution; the "open a repository by its name" form."""

from __future__ import annotations

import datetime
import hashlib
import json
import secrets

import pytest
import requests
from django.conf import settings
from django.urls import reverse

from registry.models import RegistryAccount
from registry.services import accounts, browse, ensure_console_account
from registry.tokens import sign_token
from tests.registry.helpers import account_for

pytestmark = pytest.mark.django_db

SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _blob(session: requests.Session, base: str, repository: str, data: bytes) -> dict:
    """Upload one blob (a monolithic upload: POST, then PUT with the digest); its descriptor."""
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    started = session.post(f"{base}/v2/{repository}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = requests.compat.urljoin(base, started.headers["Location"])
    done = session.put(location, params={"digest": digest}, data=data,
                       headers={"Content-Type": "application/octet-stream"})
    assert done.status_code == 201, done.text
    return {"digest": digest, "size": len(data)}


def upload_image(server, repository: str, tags: list[str], created: str = "2024-05-06T07:08:09Z",
                 layer_sizes: tuple[int, ...] = (3000, 500), headers: dict | None = None) -> dict:
    """Put a small image under `tags` with plain Registry API requests (no engine): its digest, size and config.

    `headers` authenticate (a Bearer token); else the server's Basic credentials are used, if it has any."""
    session = requests.Session()
    session.headers.update(headers or {})
    if server.username and not headers:
        session.auth = (server.username, server.password)
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": created,
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    config_descriptor = _blob(session, server.url, repository, config)
    layers = [_blob(session, server.url, repository, secrets.token_bytes(size)) for size in layer_sizes]
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": SCHEMA2,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **config_descriptor},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", **layer} for layer in layers],
    }).encode()
    for tag in tags:
        put = session.put(f"{server.url}/v2/{repository}/manifests/{tag}", data=manifest,
                          headers={"Content-Type": SCHEMA2})
        assert put.status_code == 201, put.text
    return {"digest": f"sha256:{hashlib.sha256(manifest).hexdigest()}", "manifest": manifest,
            "size": len(config) + sum(layer_sizes)}


def upload_index(server, repository: str, tag: str, images: list[dict]) -> str:
    """An OCI index of the images (already uploaded to `repository`) under `tag`; its digest."""
    entries = [{"mediaType": SCHEMA2, "digest": image["digest"], "size": len(image["manifest"]),
                "platform": {"architecture": f"arch{number}", "os": "linux"}} for number, image in enumerate(images)]
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    put = requests.put(f"{server.url}/v2/{repository}/manifests/{tag}", data=index,
                       headers={"Content-Type": OCI_INDEX})
    assert put.status_code == 201, put.text
    return f"sha256:{hashlib.sha256(index).hexdigest()}"


def _repository() -> str:
    return f"tags/page-{secrets.token_hex(4)}"


# -- the service, against a real Distribution -----------------------------------------------------------------


@pytest.mark.registry
def test_it_reads_each_tags_digest_size_and_created_date(owner, open_registry):
    repository = _repository()
    image = upload_image(open_registry, repository, ["1.0", "latest"], created="2024-05-06T07:08:09Z")
    other = upload_image(open_registry, repository, ["old"], created="2023-01-02T03:04:05Z", layer_sizes=(10,))
    page = browse.tags_page(account_for(owner, open_registry), repository)
    assert [tag.name for tag in page.tags] == ["1.0", "latest", "old"]
    first, latest, old = page.tags
    assert first.digest == latest.digest == image["digest"]
    assert first.size == image["size"]
    assert first.created == datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
    assert old.digest == other["digest"] and old.size == other["size"]
    assert old.created == datetime.datetime(2023, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert first.pull == f"docker pull {open_registry.address}/{repository}:1.0"
    # Deleting one deletes the image: the page names the tags that go with it.
    assert first.same_image == ["latest"] and old.same_image == []
    assert page.may_delete and page.next_last == ""


@pytest.mark.registry
def test_it_shows_a_page_of_tags_at_a_time(owner, open_registry):
    repository = _repository()
    upload_image(open_registry, repository, ["a", "b", "c", "d", "e"])
    account = account_for(owner, open_registry)
    first = browse.tags_page(account, repository, n=2)
    assert [tag.name for tag in first.tags] == ["a", "b"] and first.next_last == "b"
    second = browse.tags_page(account, repository, last=first.next_last, n=2)
    assert [tag.name for tag in second.tags] == ["c", "d"] and second.next_last == "d"
    third = browse.tags_page(account, repository, last="d", n=2)
    assert [tag.name for tag in third.tags] == ["e"] and third.next_last == ""


@pytest.mark.registry
def test_a_multi_platform_index_shows_its_platforms(owner, open_registry):
    repository = _repository()
    images = [upload_image(open_registry, repository, [f"arch-{n}"]) for n in range(2)]
    digest = upload_index(open_registry, repository, "multi", images)
    page = browse.tags_page(account_for(owner, open_registry), repository)
    multi = next(tag for tag in page.tags if tag.name == "multi")
    assert multi.digest == digest and multi.is_index and multi.platforms == 2 and multi.size is None


@pytest.mark.registry
def test_basic_auth_registries_are_read_with_the_accounts_credentials(owner, htpasswd_registry):
    repository = _repository()
    image = upload_image(htpasswd_registry, repository, ["v1"])
    page = browse.tags_page(account_for(owner, htpasswd_registry), repository)
    assert [(tag.name, tag.digest, tag.size) for tag in page.tags] == [("v1", image["digest"], image["size"])]
    with pytest.raises(browse.RegistryError, match="refused these credentials"):
        browse.tags_page(account_for(owner, htpasswd_registry, secret="wrong-2222", name="bad"), repository)


@pytest.mark.registry
def test_an_unknown_repository_is_not_found(owner, open_registry):
    with pytest.raises(browse.TagNotFound, match="has no repository 'tags/never'"):
        browse.tags_page(account_for(owner, open_registry), "tags/never")


def test_bad_names_are_refused_before_any_request(owner):
    account = RegistryAccount.objects.create(owner=owner, name="gone", kind="generic", url="http://127.0.0.1:9")
    with pytest.raises(browse.ValidationError, match="not a repository name"):
        browse.tags_page(account, "Bad/Name")
    with pytest.raises(browse.ValidationError, match="not a tag"):
        browse.tags_page(account, "team/app", last="no spaces")


# -- the page ------------------------------------------------------------------------------------------------


@pytest.mark.registry
def test_the_page_shows_digest_size_date_pull_and_delete(owner_client, owner, open_registry):
    repository = _repository()
    image = upload_image(open_registry, repository, ["1.0", "latest"])
    account = account_for(owner, open_registry)
    response = owner_client.get(reverse("registry:registry-tags", args=[account.pk, repository]))
    body = response.content.decode()
    assert response.status_code == 200
    assert f'data-copy="{image["digest"]}"' in body
    assert f'title="{image["size"]} bytes"' in body
    assert '<time datetime="2024-05-06T07:08:09+00:00">2024-05-06 07:08</time>' in body
    assert f'data-copy="docker pull {open_registry.address}/{repository}:1.0"' in body
    delete = reverse("registry:registry-tag-delete", args=[account.pk, repository, "1.0"])
    assert f'action="{delete}"' in body
    assert ('data-confirm="Delete tag 1.0? The same image is also tagged latest: those tags are deleted with it."'
            in body)
    assert 'name="also" value="latest"' in body and "Delete with 1 other tag<" in body
    assert 'rel="next"' not in body


@pytest.mark.registry
def test_the_page_links_to_more_tags(owner_client, owner, open_registry, monkeypatch):
    monkeypatch.setattr(browse, "TAGS_PAGE", 2)
    repository = _repository()
    upload_image(open_registry, repository, ["a", "b", "c"])
    account = account_for(owner, open_registry)
    url = reverse("registry:registry-tags", args=[account.pk, repository])
    body = owner_client.get(url).content.decode()
    assert f'href="{url}?last=b" rel="next"' in body and "<td>c</td>" not in body
    more = owner_client.get(url, {"last": "b"}).content.decode()
    assert "<td>c</td>" in more and "<td>a</td>" not in more and 'rel="next"' not in more


def test_the_page_shows_why_it_cannot_list(owner_client, owner):
    gone = RegistryAccount.objects.create(owner=owner, name="gone", kind="generic", url="http://127.0.0.1:9")
    response = owner_client.get(reverse("registry:registry-tags", args=[gone.pk, "team/app"]))
    assert response.status_code == 200
    assert "does not answer" in response.content.decode()


def test_an_outsider_gets_404(client, outsider, owner):
    account = RegistryAccount.objects.create(owner=owner, name="gone", kind="generic", url="http://127.0.0.1:9")
    client.force_login(outsider)
    assert client.get(reverse("registry:registry-tags", args=[account.pk, "team/app"])).status_code == 404
    assert client.get(reverse("registry:registry-open", args=[account.pk]), {"name": "team/app"}).status_code == 404


def test_the_console_registry_offers_delete_only_in_the_users_namespace(owner):
    account = ensure_console_account(owner)
    assert browse.may_delete(account, "alice/app")
    assert not browse.may_delete(account, "mallory/app")


# -- opening a repository by its name -------------------------------------------------------------------------


@pytest.fixture
def ghcr(owner):
    return RegistryAccount.objects.create(owner=owner, name="gh", kind="ghcr", url="ghcr.io", username="alice")


@pytest.fixture
def hub(owner):
    return RegistryAccount.objects.create(owner=owner, name="hub", kind="dockerhub", url="docker.io")


def test_the_detail_page_has_the_open_form(owner_client, ghcr):
    body = owner_client.get(reverse("registry:registry-detail", args=[ghcr.pk])).content.decode()
    assert f'action="{reverse("registry:registry-open", args=[ghcr.pk])}"' in body
    assert 'name="name"' in body and 'method="get"' in body


def test_it_opens_a_repository_by_its_name(owner_client, ghcr):
    url = reverse("registry:registry-open", args=[ghcr.pk])
    response = owner_client.get(url, {"name": " team/app "})
    assert response.status_code == 302
    assert response.url == reverse("registry:registry-tags", args=[ghcr.pk, "team/app"])
    # The registry's own name in front is taken off.
    assert owner_client.get(url, {"name": "ghcr.io/team/app"}).url == response.url


def test_docker_hub_names_are_read_as_docker_reads_them(hub):
    assert browse.repository_name(hub, "ubuntu") == "library/ubuntu"
    assert browse.repository_name(hub, "docker.io/library/ubuntu") == "library/ubuntu"
    assert browse.repository_name(hub, "bitnami/redis") == "bitnami/redis"


@pytest.mark.parametrize(("name", "message"), [
    ("", "not a repository name"),
    ("Team/App", "must be lowercase"),
    ("team/app:1", "without a tag or digest"),
    ("quay.io/team/app", "quay.io is another registry than this account&#x27;s (ghcr.io)"),
])
def test_a_bad_name_goes_back_with_a_message(owner_client, ghcr, name, message):
    response = owner_client.get(reverse("registry:registry-open", args=[ghcr.pk]), {"name": name}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("registry:registry-detail", args=[ghcr.pk])
    assert message in response.content.decode()


def test_opening_needs_get(owner_client, ghcr):
    assert owner_client.post(reverse("registry:registry-open", args=[ghcr.pk])).status_code == 405


@pytest.mark.registry
@pytest.mark.django_db(transaction=True)
def test_a_token_registry_is_read_with_one_token_per_page(owner, console_registry, monkeypatch):
    repository = f"alice/page-{secrets.token_hex(4)}"
    push = sign_token("alice", settings.REGISTRY_SERVICE,
                      [{"type": "repository", "name": repository, "actions": ["pull", "push"]}])["token"]
    upload_image(console_registry, repository, ["a", "b"], headers={"Authorization": f"Bearer {push}"})
    upload_image(console_registry, repository, ["c"], layer_sizes=(7,),
                 headers={"Authorization": f"Bearer {push}"})
    scopes: list[str] = []

    def counting_client(account):
        client = accounts.client_for(account)
        sign = client.token_source

        def source(params):
            scopes.append(params.get("scope", ""))
            return sign(params)

        client.token_source = source
        return client

    monkeypatch.setattr(browse, "client_for", counting_client)
    page = browse.tags_page(ensure_console_account(owner), repository)
    assert [tag.name for tag in page.tags] == ["a", "b", "c"]
    assert all(tag.digest and tag.size and tag.created for tag in page.tags)
    # The tags list, three manifests and two configs: one token, for the repository's pull.
    assert scopes == [f"repository:{repository}:pull"]

