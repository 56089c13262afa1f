"""The browser pages: registry accounts, browsing, push and pull."""

from __future__ import annotations

import pytest
from django.urls import reverse

from registry.models import PublicRepository, Pull, Push, RegistryAccount
from registry.services import ensure_console_account
from tests.registry.helpers import account_for

SECRET = "page-secret-31337"


@pytest.fixture
def hub(owner):
    return RegistryAccount.objects.create(owner=owner, name="hub", kind="dockerhub", url="docker.io",
                                          username="alice", secret=SECRET)


def test_the_list_shows_accounts_with_the_secret_masked(owner_client, hub):
    response = owner_client.get(reverse("registry:registry-list"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "hub" in content and "docker.io" in content and "••••••••" in content
    assert SECRET not in content
    assert "The console&#x27;s registry" in content


def test_it_creates_an_account(owner_client, owner):
    response = owner_client.post(reverse("registry:registry-create"), {
        "name": "lab", "kind": "generic", "url": "registry.example.com:5000", "username": "u", "secret": SECRET})
    account = RegistryAccount.objects.get(owner=owner, name="lab")
    assert response.status_code == 302 and response.url == reverse("registry:registry-detail", args=[account.pk])
    assert account.url == "https://registry.example.com:5000" and account.secret == SECRET


def test_a_bad_account_is_a_form_error(owner_client, owner):
    response = owner_client.post(reverse("registry:registry-create"), {"name": "lab", "kind": "generic", "url": ""})
    assert response.status_code == 200
    assert "needs its URL" in response.content.decode()
    assert not RegistryAccount.objects.filter(name="lab").exists()


def test_the_edit_form_never_shows_the_secret_and_keeps_it(owner_client, hub):
    url = reverse("registry:registry-edit", args=[hub.pk])
    assert SECRET not in owner_client.get(url).content.decode()
    response = owner_client.post(url, {"name": "hub2", "kind": "dockerhub", "username": "bob", "secret": ""})
    assert response.status_code == 302
    hub.refresh_from_db()
    assert (hub.name, hub.username, hub.secret) == ("hub2", "bob", SECRET)


def test_it_deletes_an_account(owner_client, hub):
    assert owner_client.get(reverse("registry:registry-delete", args=[hub.pk])).status_code == 405
    response = owner_client.post(reverse("registry:registry-delete", args=[hub.pk]))
    assert response.status_code == 302
    assert not RegistryAccount.objects.filter(pk=hub.pk).exists()


def test_the_console_account_stays(owner_client, owner):
    console = ensure_console_account(owner)
    owner_client.post(reverse("registry:registry-delete", args=[console.pk]))
    assert RegistryAccount.objects.filter(pk=console.pk).exists()
    assert owner_client.get(reverse("registry:registry-edit", args=[console.pk])).status_code == 302


def test_an_outsider_gets_404(client, outsider, hub):
    client.force_login(outsider)
    for name in ("registry:registry-detail", "registry:registry-edit", "registry:registry-delete",
                 "registry:registry-test"):
        method = client.post if name in ("registry:registry-delete", "registry:registry-test") else client.get
        assert method(reverse(name, args=[hub.pk])).status_code == 404, name
    assert client.get(reverse("registry:registry-tags", args=[hub.pk, "a/b"])).status_code == 404
    assert RegistryAccount.objects.filter(pk=hub.pk).exists()


def test_pages_need_a_login(client, hub):
    response = client.get(reverse("registry:registry-list"))
    assert response.status_code == 302 and "/accounts/login/" in response.url


def test_the_detail_page_says_when_there_is_no_catalog(owner_client, owner):
    gone = RegistryAccount.objects.create(owner=owner, name="gone", kind="generic", url="http://127.0.0.1:9")
    response = owner_client.get(reverse("registry:registry-detail", args=[gone.pk]))
    assert response.status_code == 200
    assert "does not answer" in response.content.decode()


@pytest.mark.engine
def test_it_tests_browses_and_shows_tags(owner_client, owner, htpasswd_registry):
    account = account_for(owner, htpasswd_registry)
    response = owner_client.post(reverse("registry:registry-test", args=[account.pk]), follow=True)
    assert "Logged in to" in response.content.decode()
    assert owner_client.get(reverse("registry:registry-detail", args=[account.pk])).status_code == 200
    response = owner_client.get(reverse("registry:registry-tags", args=[account.pk, "never/pushed"]))
    assert "no repository" in response.content.decode()
    assert owner_client.post(reverse("registry:registry-tags", args=[account.pk, "x/y"])).status_code == 405


def test_it_publishes_a_console_repository(owner_client, owner):
    console = ensure_console_account(owner)
    url = reverse("registry:registry-publish", args=[console.pk, "alice/app"])
    assert owner_client.get(url).status_code == 405
    owner_client.post(url, {"public": "1"})
    assert PublicRepository.objects.filter(owner=owner, name="alice/app").exists()
    owner_client.post(url, {"public": "0"})
    assert not PublicRepository.objects.exists()
    owner_client.post(reverse("registry:registry-publish", args=[console.pk, "mallory/app"]), {"public": "1"})
    assert not PublicRepository.objects.exists()


@pytest.mark.engine
def test_the_push_page_starts_a_push_and_shows_its_progress(owner_client, owner, hub):
    response = owner_client.post(reverse("registry:push-create"), {
        "image": "busybox:1.35.0", "registry": hub.pk, "repository": "alice/app", "tag": "1"})
    push = Push.objects.get(owner=owner)
    assert response.status_code == 302 and response.url == reverse("registry:push-detail", args=[push.pk])
    page = owner_client.get(response.url).content.decode()
    assert f'data-api="/api/v1/pushes/{push.pk}/"' in page
    assert "js/registry-transfer.js" in page and "<script>" not in page
    assert "docker.io/alice/app:1" in page


@pytest.mark.engine
def test_the_push_page_shows_errors(owner_client, owner, hub):
    response = owner_client.post(reverse("registry:push-create"), {
        "image": "no-such:0", "registry": hub.pk, "repository": "alice/app", "tag": "1"})
    assert response.status_code == 200
    assert "You have no image" in response.content.decode()
    assert not Push.objects.exists()


def test_the_pull_page_starts_a_pull(owner_client, owner, hub):
    assert owner_client.get(reverse("registry:pull-create")).status_code == 200
    response = owner_client.post(reverse("registry:pull-create"), {"registry": hub.pk, "reference": "library/alpine"})
    pull = Pull.objects.get(owner=owner)
    assert pull.reference == "library/alpine:latest"
    assert response.url == reverse("registry:pull-detail", args=[pull.pk])
    assert "docker.io/library/alpine:latest" in owner_client.get(response.url).content.decode()


def test_the_pull_page_refuses_to_pull_over_a_shared_base_images_name(owner_client, owner, hub):
    # Docker Hub's busybox would take the plain name every user builds FROM.
    response = owner_client.post(reverse("registry:pull-create"),
                                 {"registry": hub.pk, "reference": "library/busybox:1.35.0"})
    assert response.status_code == 200
    assert "shared base image" in response.content.decode()
    assert not Pull.objects.exists()


def test_an_outsider_cannot_see_a_push_or_pull(client, outsider, owner, hub):
    push = Push.objects.create(owner=owner, registry=hub, image="x", repository="alice/x")
    pull = Pull.objects.create(owner=owner, registry=hub, reference="alice/x:1")
    client.force_login(outsider)
    assert client.get(reverse("registry:push-detail", args=[push.pk])).status_code == 404
    assert client.get(reverse("registry:pull-detail", args=[pull.pk])).status_code == 404


def test_transfer_pages_refuse_post(owner_client, owner, hub):
    push = Push.objects.create(owner=owner, registry=hub, image="x", repository="alice/x")
    assert owner_client.post(reverse("registry:push-detail", args=[push.pk])).status_code == 405
