"""The push form's image picker: opened from an image (`?image=`), the user's own images only, the picked record
pushed by its number, the help text's placeholder shown as text."""

from __future__ import annotations

import re

import pytest

from registry.models import Push, RegistryAccount
from tests.builds.test_images_fixtures import make_image


@pytest.fixture
def hello(owner):
    return make_image(owner, "hello", ["a"], tags=["hello:1"])


@pytest.fixture
def sent(monkeypatch, owner):
    """trigger_push as the view calls it, recorded; the push row it would make."""
    calls = []

    def trigger_push(user, image, registry, repository, tag):
        calls.append((user, image, registry, repository, tag))
        return Push.objects.create(owner=user, registry=registry, image=image, repository=repository, tag=tag)

    monkeypatch.setattr("registry.services.trigger_push", trigger_push)
    return calls


def _selected(page: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}".*?</select>', page, re.S).group(0)
    return re.findall(r'<option value="(\d+)"[^>]*selected', select)


def test_it_opens_with_the_image_the_console_registry_and_a_repository_in_the_users_namespace(
        owner_client, owner, outsider, hello):
    theirs = make_image(outsider, "theirs", ["c"])
    page = owner_client.get(f"/pushes/new/?image={hello.pk}").content.decode()
    console = RegistryAccount.objects.get(owner=owner, kind="console")
    assert _selected(page, "picked") == [str(hello.pk)]
    assert _selected(page, "registry") == [str(console.pk)]
    assert re.search(r'name="repository"[^>]*value="alice/hello"', page)
    assert "theirs:1" not in page and f'value="{theirs.pk}"' not in page
    assert "js/picker.js" in page and "<script>" not in page


def test_the_help_text_shows_the_placeholder_as_text(owner_client):
    page = owner_client.get("/pushes/new/").content.decode()
    assert "For the console&#x27;s registry: &lt;your username&gt;/&lt;name&gt;." in page
    assert "<your username>" not in page


def test_a_picked_image_is_pushed_by_its_record_number(owner_client, owner, hello, sent):
    owner_client.get("/pushes/new/")  # makes the console's account
    console = RegistryAccount.objects.get(owner=owner, kind="console")
    answer = owner_client.post("/pushes/new/", {"picked": hello.pk, "image": "", "registry": console.pk,
                                                "repository": "alice/hello", "tag": "1"})
    push = Push.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/pushes/{push.pk}/"
    assert sent == [(owner, str(hello.pk), console, "alice/hello", "1")]


def test_a_typed_reference_still_works_and_both_at_once_is_refused(owner_client, owner, hello, sent):
    owner_client.get("/pushes/new/")
    console = RegistryAccount.objects.get(owner=owner, kind="console")
    typed = owner_client.post("/pushes/new/", {"image": "hello:1", "registry": console.pk,
                                               "repository": "alice/hello", "tag": "1"})
    assert typed.status_code == 302 and sent[-1][1] == "hello:1"
    both = owner_client.post("/pushes/new/", {"picked": hello.pk, "image": "hello:1", "registry": console.pk,
                                              "repository": "alice/hello", "tag": "1"})
    assert both.status_code == 200 and "not both" in both.content.decode() and len(sent) == 1


def test_another_users_image_is_no_choice(owner_client, owner, outsider, sent):
    theirs = make_image(outsider, "theirs", ["c"])
    owner_client.get("/pushes/new/")
    console = RegistryAccount.objects.get(owner=owner, kind="console")
    answer = owner_client.post("/pushes/new/", {"picked": theirs.pk, "registry": console.pk,
                                                "repository": "alice/theirs", "tag": "1"})
    assert "Select a valid choice" in answer.content.decode() and not sent
    # Nor does opening the form with it pick it.
    assert _selected(owner_client.get(f"/pushes/new/?image={theirs.pk}").content.decode(), "picked") == []
