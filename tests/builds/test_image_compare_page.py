"""The compare page (/images/compare/?base=&head=) and the links to it: from the image page (the other images of
its repository) and from the build page ("what this build changed": the previous successful build's image)."""

from __future__ import annotations

import pytest
from django.test import Client

from builds.models import Build, Image, Repository, Source
from tests.builds.test_api_images_compare import analysed, file, two_images, with_packages
from tests.builds.test_images_fixtures import make_image

pytestmark = pytest.mark.django_db
URL = "/images/compare/"


def test_it_shows_each_kind_of_difference(owner, owner_client):
    base, head = two_images(owner)
    analysed(base, {0: [file("bin/sh", 10), file("etc/old", 3)]})
    analysed(head, {0: [file("bin/sh", 10), file("etc/old", 3)],
                    3: [file("etc/<new>", 4), {"path": "etc/old", "change": "removed", "type": "file", "size": 3},
                        file("bin/sh", 10, "modified", mode=0o4755)]})
    with_packages(base, [("deb", "libc6", "2.36-9")])
    with_packages(head, [("deb", "libc6", "2.36-10")])

    response = owner_client.get(f"{URL}?base={base.pk}&head={head.pk}")

    assert response.status_code == 200
    body = response.content.decode()
    assert ('<tr class="config-env"><td>env <code>NEW</code></td><td><span class="muted">not set</span></td>'
            "<td><code>1</code>") in body
    assert "label <code>team</code></td><td><code>a</code></td><td><code>b</code>" in body
    assert body.count('class="layer-added"') == 1 and "RUN make two" in body
    assert "<code>/etc/&lt;new&gt;</code>" in body and "<code>/etc/old</code>" in body
    assert "1 added, 1 removed, 1 changed" in body
    assert "mode <code>0644</code>" in body and "mode <code>4755</code>" in body
    assert "<code>2.36-9</code></td><td><code>2.36-10</code>" in body
    assert f'href="/images/compare/?base={head.pk}&amp;head={base.pk}"' in body


def test_before_the_analyses_it_says_the_files_are_not_known_yet(owner, owner_client):
    base, head = two_images(owner)
    body = owner_client.get(f"{URL}?base={base.pk}&head={head.pk}").content.decode()
    assert 'id="files-unknown"' in body and "Not known yet" in body and 'id="packages-unknown"' in body


def test_a_missing_id_shows_the_form_with_the_message(owner_client):
    response = owner_client.get(f"{URL}?base=1")
    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="compare-form"' in body and "Give the head image" in body


def test_another_users_image_is_a_404(owner, outsider, owner_client):
    mine, theirs = make_image(owner, "mine", ["one"]), make_image(outsider, "theirs", ["one"])
    assert owner_client.get(f"{URL}?base={mine.pk}&head={theirs.pk}").status_code == 404
    assert owner_client.get(f"{URL}?base={mine.pk}&head={theirs.pk + 100}").status_code == 404


def test_it_needs_a_login_and_only_answers_get(owner, owner_client):
    image = make_image(owner, "one", ["one"])
    assert Client().get(f"{URL}?base={image.pk}&head={image.pk}").status_code == 302
    assert owner_client.post(f"{URL}?base={image.pk}&head={image.pk}").status_code == 405


def test_the_image_page_links_to_the_other_images_of_its_repository(owner, outsider, owner_client):
    repository = Repository.objects.create(owner=owner, name="app")
    old = make_image(owner, "old", ["one"], tags=["app:1"], repository=repository)
    pulled = make_image(owner, "pulled", ["one"], tags=["app:2"])
    other = make_image(owner, "other", ["one"], tags=["web:1"])
    make_image(outsider, "theirs", ["one"], tags=["app:3"])
    image = make_image(owner, "new", ["one", "two"], tags=["app:latest"], repository=repository)

    body = owner_client.get(f"/images/{image.pk}/").content.decode()

    panel = body[body.index('id="image-compare"'):]
    panel = panel[:panel.index("</section>")]
    assert f"?base={old.pk}&amp;head={image.pk}" in panel and f"?base={pulled.pk}&amp;head={image.pk}" in panel
    assert f"base={other.pk}&" not in panel and panel.count("<li>") == 2


def test_an_image_alone_in_its_repository_has_no_compare_panel(owner, owner_client):
    image = make_image(owner, "alone", ["one"], tags=["alone:1"])
    assert 'id="image-compare"' not in owner_client.get(f"/images/{image.pk}/").content.decode()


def build_with_image(owner, source: Source, name: str, status: str = "succeeded") -> tuple[Build, Image]:
    build = Build.objects.create(owner=owner, repository=source.repository, source=source, status=status)
    return build, make_image(owner, name, [name], build=build, repository=source.repository)


def test_the_build_page_links_to_what_the_build_changed(owner, owner_client, hello_source):
    source = hello_source
    first, first_image = build_with_image(owner, source, "first")
    build_with_image(owner, source, "broken", status="failed")
    elsewhere = Repository.objects.create(owner=owner, name="else")
    build_with_image(owner, Source.objects.create(repository=elsewhere, kind="archive", archive_format="tar",
                                                  sha256=source.sha256, size=source.size), "elsewhere")
    latest, latest_image = build_with_image(owner, source, "latest")

    body = owner_client.get(f"/builds/{latest.pk}/").content.decode()
    assert f'id="build-changes" href="/images/compare/?base={first_image.pk}&amp;head={latest_image.pk}"' in body
    assert 'id="build-changes"' not in owner_client.get(f"/builds/{first.pk}/").content.decode()
