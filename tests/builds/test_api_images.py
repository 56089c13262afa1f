"""GET /api/v1/images/ and /api/v1/images/{id}/: the records' shape, the filters, a constant number of queries,
who may see what. Rows are made in the database: the engine-facing parts are in test_images_engine.py."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from builds.models import Image
from builds.services.repositories import create_repository
from tests.builds.test_images_fixtures import BASE_DIFF, diff, make_image

URL = "/api/v1/images/"


def test_it_shows_an_image_with_its_config_and_layers(owner_api, owner):
    image = make_image(owner, "app", ["one"], labels={"team": "web"})

    body = owner_api.get(f"{URL}{image.pk}/").json()

    assert body["id"] == image.pk and body["image_id"] == image.image_id
    assert body["tags"] == ["app:1"] and body["digests"] == []
    assert body["labels"] == {"team": "web"}
    assert body["created"] == "2026-01-02T03:04:05Z"
    assert body["architecture"] == "amd64" and body["os"] == "linux"
    assert set(body["config"]) == {"env", "cmd", "entrypoint", "user", "workdir", "exposed_ports", "volumes",
                                   "healthcheck"}
    assert body["layers"] == [
        {"index": 0, "diff_id": BASE_DIFF, "created_by": "/bin/sh -c #(nop) ADD file:base in /", "size": 1_000_000,
         "empty_layer": False, "created": None, "build_step": None},
        {"index": 1, "diff_id": diff("one"), "created_by": "RUN make one", "size": 100, "empty_layer": False,
         "created": None, "build_step": None},
        {"index": 2, "diff_id": "", "created_by": "/bin/sh -c #(nop)  ENV STEP=1", "size": 0, "empty_layer": True,
         "created": None, "build_step": None},
    ]
    assert body["build"] is None
    assert body["analysis_status"] == "none"
    assert body["wasted_bytes"] is None and body["efficiency"] is None and body["files_size"] is None
    assert body["os_release"] == {} and body["packages_read"] is None
    # The list writes each image as the detail does.
    assert owner_api.get(URL).json()["results"] == [body]


def test_it_lists_only_the_callers_images_newest_first(owner_api, owner, outsider):
    first, second = make_image(owner, "first"), make_image(owner, "second")
    make_image(outsider, "theirs")

    body = owner_api.get(URL).json()

    assert body["count"] == 2
    assert [item["id"] for item in body["results"]] == [second.pk, first.pk]
    assert all(len(item["layers"]) == 1 for item in body["results"])


@pytest.mark.parametrize(("query", "expected"), [
    ("label=team=web", {"web", "both"}),
    ("label=team=web&label=tier=front", {"both"}),
    ("label=tier", {"both", "api"}),
    ("label=io.console.build-id=7", {"api"}),
    ("label=team=nobody", set()),
    ("tag=web:1", {"web"}),
    ("tag=web", {"web"}),
    ("tag=registry.example:5000/alice/api:2", {"api"}),
    ("tag=registry.example:5000/alice/api", {"api"}),
    ("tag=api", set()),
    ("label=tier=front&tag=both:1", {"both"}),
    ("label=tier=front&tag=web:1", set()),
    ("", {"web", "both", "api"}),
])
def test_filters_combine(owner_api, owner, query, expected):
    make_image(owner, "web", labels={"team": "web"})
    make_image(owner, "both", labels={"team": "web", "tier": "front"})
    make_image(owner, "api", labels={"tier": "back", "io.console.build-id": "7"},
               tags=["registry.example:5000/alice/api:2"])

    response = owner_api.get(f"{URL}?{query}")

    assert response.status_code == 200
    assert {item["tags"][0].rsplit("/", 1)[-1].split(":")[0] for item in response.json()["results"]} == expected


def test_it_filters_by_repository(owner_api, owner, outsider):
    mine = create_repository(owner, "mine", "")
    theirs = create_repository(outsider, "theirs", "")
    image = make_image(owner, "in-repo", repository=mine)
    make_image(owner, "elsewhere")

    assert [item["id"] for item in owner_api.get(f"{URL}?repository={mine.pk}").json()["results"]] == [image.pk]
    assert owner_api.get(f"{URL}?repository={theirs.pk}").json()["results"] == []


@pytest.mark.parametrize(("query", "field"), [
    ("label==web", "label"),
    ("tag=has space", "tag"),
    ('tag=quo"te', "tag"),
    ("repository=abc", "repository"),
    ("&".join(["label=a=b"] * 11), "label"),
])
def test_bad_filters_are_400_naming_the_parameter(owner_api, owner, query, field):
    response = owner_api.get(f"{URL}?{query}")

    assert response.status_code == 400
    assert field in response.json()


def test_the_list_runs_the_same_number_of_queries_for_3_or_60_images(owner_api, owner):
    for number in range(3):
        make_image(owner, f"few-{number}", ["a", f"b{number}"])
    with CaptureQueriesContext(connection) as few:
        assert len(owner_api.get(URL).json()["results"]) == 3
    for number in range(57):
        make_image(owner, f"many-{number}", ["a", f"c{number}"], labels={"n": str(number)})
    # One page holding all 57 (more than the default 50): the count, the page's ids, its rows, their layers.
    with CaptureQueriesContext(connection) as many:
        assert len(owner_api.get(f"{URL}?label=n&page_size=100").json()["results"]) == 57

    assert len(many) == len(few) <= 4


def test_the_list_does_not_load_layer_files(owner_api, owner):
    image = make_image(owner, "files", ["a"])
    image.layers.update(files=[{"path": "x" * 100, "change": "added", "type": "file", "size": 1}])

    with CaptureQueriesContext(connection) as queries:
        owner_api.get(URL)

    layer_query = next(query["sql"] for query in queries if "builds_layer" in query["sql"])
    assert '"files"' not in layer_query


def test_anonymous_is_401(api_client, owner):
    image = make_image(owner, "anon")
    for url in (URL, f"{URL}{image.pk}/", f"{URL}tree/", f"{URL}{image.pk}/layers/0/files/"):
        assert api_client.get(url).status_code == 401
    for url in (f"{URL}sync/", f"{URL}{image.pk}/analyse/", f"{URL}{image.pk}/tag/"):
        assert api_client.post(url).status_code == 401
    assert api_client.delete(f"{URL}{image.pk}/").status_code == 401


def test_outsiders_get_404(api_client, outsider, owner):
    image = make_image(owner, "private", ["a"])
    api_client.force_authenticate(outsider)

    for url in (f"{URL}{image.pk}/", f"{URL}{image.pk}/layers/0/files/"):
        assert api_client.get(url).status_code == 404
    assert api_client.post(f"{URL}{image.pk}/analyse/").status_code == 404
    assert api_client.post(f"{URL}{image.pk}/tag/", {"repository": "x"}, format="json").status_code == 404
    assert api_client.delete(f"{URL}{image.pk}/").status_code == 404
    assert api_client.get(f"{URL}tree/").json() == []
    assert Image.objects.filter(pk=image.pk, analysis=None).exists()


def test_wrong_methods_are_405(owner_api, owner):
    image = make_image(owner, "methods")

    assert owner_api.post(URL, {}, format="json").status_code == 405
    assert owner_api.put(f"{URL}{image.pk}/", {}, format="json").status_code == 405
    assert owner_api.patch(f"{URL}{image.pk}/", {}, format="json").status_code == 405
    assert owner_api.get(f"{URL}sync/").status_code == 405
    assert owner_api.post(f"{URL}tree/").status_code == 405
    assert owner_api.get(f"{URL}{image.pk}/analyse/").status_code == 405
    assert owner_api.get(f"{URL}{image.pk}/tag/").status_code == 405
    assert owner_api.post(f"{URL}{image.pk}/layers/0/files/").status_code == 405
