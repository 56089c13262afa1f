"""The image pages: list with its label filter, image page, tree page; analyse, tag, remove and sync posts."""

from __future__ import annotations

import pytest

from builds.models import Image
from tests.builds.test_images_fixtures import make_image


@pytest.fixture
def images(owner, outsider):
    return {
        "web": make_image(owner, "web", ["a"], labels={"team": "web", "tier": "front"}),
        "api": make_image(owner, "api", ["b"], labels={"team": "api"}),
        "theirs": make_image(outsider, "theirs", ["c"], labels={"team": "web"}),
    }


def test_the_list_filters_by_label_like_the_api(owner_client, owner_api, images):
    page = owner_client.get("/images/?label=team=web")
    body = page.content.decode()

    assert page.status_code == 200
    assert "web:1" in body and "api:1" not in body and "theirs:1" not in body
    assert 'value="team=web"' in body
    api = owner_api.get("/api/v1/images/?label=team=web").json()
    assert [item["id"] for item in api["results"]] == [images["web"].pk]


def test_the_list_shows_everything_without_a_filter_and_a_bad_filter_is_a_form_error(owner_client, images):
    body = owner_client.get("/images/").content.decode()
    assert "web:1" in body and "api:1" in body and "theirs:1" not in body

    bad = owner_client.get("/images/?label==x")
    assert bad.status_code == 400
    assert "is not a label filter" in bad.content.decode()


def test_the_image_page_shows_labels_config_and_a_bar_per_layer(owner_client, images):
    image = images["web"]

    page = owner_client.get(f"/images/{image.pk}/")
    body = page.content.decode()

    assert page.status_code == 200
    assert "<code>team</code>" in body and "<code>front</code>" in body
    assert body.count('<meter class="layer-bar"') == 3
    # The base layer is the largest: full bar; the RUN layer of 100 bytes rounds to 0.
    assert 'value="100"' in body and 'value="0"' in body
    assert "Analyse files" in body and 'id="tag-form"' in body and 'id="remove-image"' in body
    assert "style=" not in body


def test_analyse_queues_once(owner_client, images):
    image = images["web"]

    response = owner_client.post(f"/images/{image.pk}/analyse/")

    assert response.status_code == 302
    image.refresh_from_db()
    assert image.analysis_status == "queued"
    owner_client.post(f"/images/{image.pk}/analyse/")
    image.refresh_from_db()
    assert image.analysis_status == "queued"


def test_a_bad_tag_is_a_form_error(owner_client, images):
    response = owner_client.post(f"/images/{images['web'].pk}/tag/", {"repository": "Bad Name", "tag": "1"})

    assert response.status_code == 400
    assert "is not a valid image name" in response.content.decode()


def test_removing_an_image_the_engine_no_longer_has_forgets_it(owner_client, images):
    image = images["api"]

    response = owner_client.post(f"/images/{image.pk}/remove/")

    assert response.status_code == 302 and response.url == "/images/"
    assert not Image.objects.filter(pk=image.pk).exists()


def test_outsiders_get_404(client, outsider, images):
    client.force_login(outsider)
    image = images["web"]

    assert client.get(f"/images/{image.pk}/").status_code == 404
    for action in ("analyse", "tag", "remove"):
        assert client.post(f"/images/{image.pk}/{action}/", {"repository": "x", "tag": "1"}).status_code == 404
    image.refresh_from_db()
    assert image.analysis_status == "none"
    assert "web:1" not in client.get("/images/tree/").content.decode()


def test_wrong_methods_are_405_and_anonymous_is_sent_to_log_in(owner_client, client, images):
    image = images["web"]
    for url in (f"/images/{image.pk}/analyse/", f"/images/{image.pk}/tag/", f"/images/{image.pk}/remove/",
                "/images/sync/"):
        assert owner_client.get(url).status_code == 405
    for url in ("/images/", f"/images/{image.pk}/", "/images/tree/"):
        assert owner_client.post(url).status_code == 405
    client.logout()
    assert client.get("/images/").url.startswith("/accounts/login/")


def test_the_tree_page_nests_images_under_shared_layers(owner_client, owner):
    make_image(owner, "parent", ["p"])
    make_image(owner, "child", ["p", "c"])

    body = owner_client.get("/images/tree/").content.decode()

    assert body.index("parent:1") < body.index("child:1")
    # The child's node is inside the parent's: its <details> opens before the parent's closes.
    assert body.index("child:1") < body.rindex("</details>")
    # Two nodes: base + p (no image ends at the base alone, so they are one run), then c.
    assert body.count("<details open>") == 2


def test_the_empty_list_says_how_to_get_images_and_a_fruitless_search_how_to_clear_it(owner_client, owner):
    empty = owner_client.get("/images/").content.decode()
    assert "No images yet" in empty and 'href="/repositories/"' in empty and 'href="/pulls/new/"' in empty
    assert "0 images" in empty
    make_image(owner, "web", ["a"])
    none = owner_client.get("/images/", {"q": "nothing-like-it"}).content.decode()
    assert "No images match these filters" in none and 'href="/images/"' in none


def test_the_search_counts_and_the_pager_keeps_every_filter(owner_client, owner):
    from tests.console.test_list_pages_queries import make_images

    make_images(owner, 60, name="web", labels={"team": "web", "tier": "front"})
    make_images(owner, 5, name="api", labels={"team": "api"}, start=60)
    response = owner_client.get("/images/", {"q": "front", "label": ["team=web", "tier"]})
    body = response.content.decode()
    assert response.status_code == 200
    assert "60 images match the filters" in body
    assert len(response.context["images"]) == 50
    assert 'href="?q=front&amp;label=team%3Dweb&amp;label=tier&amp;page=2"' in body
    second = owner_client.get("/images/", {"q": "front", "label": ["team=web", "tier"], "page": "2"})
    assert [image.tags for image in second.context["images"]][-1] == ["web:0"]
    assert 'value="front"' in second.content.decode()


def test_a_bad_date_is_a_form_error_on_the_page(owner_client, images):
    response = owner_client.get("/images/", {"created_after": "yesterday"})
    assert response.status_code == 400
    assert "Enter a valid date/time" in response.content.decode()
    assert list(response.context["images"]) == []
