"""GET /api/v1/images/compare/?base=&head=: the shape, the refusals (400 for a missing or malformed id, 404 for
another user's image exactly as for a missing one), the files and packages not known before both analyses, and a
number of queries that does not grow with the images' layers or files."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from builds.constants import AnalysisStatus
from builds.models import Image, ImageAnalysis, ImagePackage, Layer
from tests.builds.test_images_fixtures import make_image

pytestmark = pytest.mark.django_db
URL = "/api/v1/images/compare/"


def analysed(image: Image, files: dict[int, list[dict]]) -> Image:
    """Give the image's layers (by index) their files and the image a succeeded analysis."""
    for index, rows in files.items():
        Layer.objects.filter(image=image, index=index).update(files=rows)
    Layer.objects.filter(image=image, files__isnull=True).update(files=[])
    run = ImageAnalysis.objects.create(image=image, status=AnalysisStatus.SUCCEEDED)
    Image.objects.filter(pk=image.pk).update(analysis=run)
    image.refresh_from_db()
    return image


def file(path: str, size: int = 1, change: str = "added", mode: int = 0o644) -> dict:
    return {"path": path, "change": change, "type": "file", "size": size, "mode": mode}


def two_images(owner) -> tuple[Image, Image]:
    base = make_image(owner, "app", ["one"], labels={"team": "a"}, tags=["app:1"])
    head = make_image(owner, "app2", ["one", "two"], labels={"team": "b"}, tags=["app:2"])
    Image.objects.filter(pk=head.pk).update(config={**head.config, "env": ["PATH=/bin", "NEW=1"]})
    head.refresh_from_db()
    return base, head


def test_it_compares_layers_and_config_at_once_and_says_files_and_packages_are_not_known_yet(owner, owner_api):
    base, head = two_images(owner)
    response = owner_api.get(f"{URL}?base={base.pk}&head={head.pk}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"base", "head", "packages", "layers", "files", "config"}
    assert body["base"] == {"id": base.pk, "image_id": base.image_id, "tags": ["app:1"], "analysis_status": "none"}
    assert [row["index"] for row in body["layers"]["shared"]] == [0, 1]
    assert [row["instruction"] for row in body["layers"]["added"]] == ["RUN make two"]
    assert body["layers"]["removed"] == []
    assert body["config"]["env"] == [{"name": "NEW", "base": None, "head": "1"}]
    assert body["config"]["labels"] == [{"name": "team", "base": "a", "head": "b"}]
    assert body["config"]["cmd"] is None
    files = body["files"]
    assert files["known"] is False and files["added"] is None and files["bytes"] is None
    assert files["detail"] == (f"Not known yet: the base image (#{base.pk}) is not analysed: ask for its analysis; "
                               f"the head image (#{head.pk}) is not analysed: ask for its analysis. They are "
                               "compared once both images are analysed.")
    assert set(files) == {"known", "detail", "added", "removed", "changed", "counts", "truncated", "bytes"}
    assert body["packages"]["known"] is False and body["packages"]["added"] is None
    assert set(body["packages"]) >= {"added", "removed", "changed", "known", "detail"}


def test_once_both_are_analysed_the_files_compare(owner, owner_api):
    base, head = two_images(owner)
    analysed(base, {0: [file("bin/sh", 10), file("etc/conf", 5)], 1: [file("app/old", 3)]})
    analysed(head, {0: [file("bin/sh", 10), file("etc/conf", 5)], 1: [file("app/old", 3)],
                    3: [file("etc/conf", 8, "modified"), file("app/new", 4),
                        {"path": "app/old", "change": "removed", "type": "file", "size": 3}]})

    files = owner_api.get(f"{URL}?base={base.pk}&head={head.pk}").json()["files"]

    assert files["known"] is True and files["detail"] == ""
    assert [row["path"] for row in files["added"]] == ["app/new"]
    assert [row["path"] for row in files["removed"]] == ["app/old"]
    assert files["changed"] == [{"path": "etc/conf", "from": {"type": "file", "size": 5, "mode": 0o644, "link": None},
                                 "to": {"type": "file", "size": 8, "mode": 0o644, "link": None}}]
    assert files["bytes"] == (10 + 8 + 4) - (10 + 5 + 3)
    assert files["counts"] == {"added": 1, "removed": 1, "changed": 1} and files["truncated"] is False


def test_one_image_not_analysed_is_named_in_the_detail(owner, owner_api):
    base, head = two_images(owner)
    analysed(base, {0: [file("bin/sh")]})
    ImageAnalysis.objects.filter(image=head).delete()
    run = ImageAnalysis.objects.create(image=head, status=AnalysisStatus.FAILED, error="engine gone")
    Image.objects.filter(pk=head.pk).update(analysis=run)

    files = owner_api.get(f"{URL}?base={base.pk}&head={head.pk}").json()["files"]

    assert files["known"] is False
    assert files["detail"] == (f"Not known yet: the head image's (#{head.pk}) analysis is failed. They are compared "
                               "once both images are analysed.")


def with_packages(image: Image, packages: list[tuple[str, str, str]]) -> None:
    ImagePackage.objects.bulk_create([
        ImagePackage(image=image, ecosystem=ecosystem, name=name, version=version,
                     purl=f"pkg:{ecosystem}/{name}@{version}", path="var/lib/dpkg/status")
        for ecosystem, name, version in packages])
    Image.objects.filter(pk=image.pk).update(packages_read=timezone.now())


def test_packages_compare_once_both_images_packages_are_read(owner, owner_api):
    base, head = two_images(owner)
    with_packages(base, [("deb", "libc6", "2.36-9"), ("deb", "curl", "7.88.1-10"), ("pypi", "flask", "3.0.0")])
    url = f"{URL}?base={base.pk}&head={head.pk}"

    waiting = owner_api.get(url).json()["packages"]
    assert waiting == {"known": False, "added": None, "removed": None, "changed": None,
                       "detail": f"Not known yet: the head image's (#{head.pk}) packages are not read yet (its "
                                 "analysis reads them)."}

    with_packages(head, [("deb", "libc6", "2.36-9+deb12u4"), ("pypi", "flask", "3.0.0"), ("npm", "left-pad", "1.3.0")])
    packages = owner_api.get(url).json()["packages"]
    assert packages == {
        "known": True, "detail": "",
        "added": [{"ecosystem": "npm", "name": "left-pad", "version": "1.3.0"}],
        "removed": [{"ecosystem": "deb", "name": "curl", "version": "7.88.1-10"}],
        "changed": [{"ecosystem": "deb", "name": "libc6", "from": "2.36-9", "to": "2.36-9+deb12u4"}],
    }


@pytest.mark.parametrize("query, field", [
    ("", "base"), ("?base=1", "head"), ("?head=1", "base"), ("?base=x&head=1", "base"), ("?base=1&head=-2", "head"),
    ("?base=0&head=1", "base"), ("?base=1&head=1.5", "head"), ("?base=1234567890123&head=1", "base"),
    ("?base=%201%00&head=1", "base"),
])
def test_a_missing_or_malformed_id_is_a_400_naming_the_parameter(owner_api, query, field):
    response = owner_api.get(f"{URL}{query}")
    assert response.status_code == 400
    assert list(response.json()) == [field] and response.json()[field][0]


def test_another_users_image_is_a_404_exactly_as_a_missing_one(owner, outsider, owner_api):
    mine = make_image(owner, "mine", ["one"])
    theirs = make_image(outsider, "theirs", ["one"])
    missing = theirs.pk + 1000

    other = owner_api.get(f"{URL}?base={mine.pk}&head={theirs.pk}")
    gone = owner_api.get(f"{URL}?base={mine.pk}&head={missing}")

    assert other.status_code == gone.status_code == 404
    assert other.json() == {"detail": f"You have no image {theirs.pk}."}
    assert gone.json() == {"detail": f"You have no image {missing}."}
    assert owner_api.get(f"{URL}?base={theirs.pk}&head={mine.pk}").status_code == 404


def test_it_needs_a_login_and_only_answers_get(owner, api_client, owner_api):
    image = make_image(owner, "one", ["one"])
    assert api_client.get(f"{URL}?base={image.pk}&head={image.pk}").status_code in (401, 403)
    assert owner_api.post(f"{URL}?base={image.pk}&head={image.pk}").status_code == 405


def test_an_image_compared_with_itself_differs_in_nothing(owner, owner_api):
    image = analysed(make_image(owner, "one", ["one"]), {0: [file("bin/sh")]})
    body = owner_api.get(f"{URL}?base={image.pk}&head={image.pk}").json()
    assert body["layers"]["added"] == body["layers"]["removed"] == []
    assert body["files"]["counts"] == {"added": 0, "removed": 0, "changed": 0} and body["files"]["bytes"] == 0
    assert body["config"] == {"env": [], "cmd": None, "entrypoint": None, "user": None, "ports": None, "labels": []}


def big_image(owner, name: str, layers: int, files_per_layer: int, changed: int = 0, base: str = "layer") -> Image:
    """An analysed image of `layers` layers (named base0, base1...: images of the same `base` share them) of
    `files_per_layer` files each, and when `changed`, one more layer that grows the first `changed` files of each."""
    names = [f"{base}{n}" for n in range(layers)] + ([f"{name}-changes"] if changed else [])
    image = make_image(owner, name, names)
    files = {2 * n + 1: [file(f"{base}{n}/f{k:05}", size=k) for k in range(files_per_layer)] for n in range(layers)}
    if changed:
        files[2 * layers + 1] = [file(f"{base}{n}/f{k:05}", size=k + 1, change="modified")
                                 for n in range(layers) for k in range(changed)]
    return analysed(image, files)


def test_the_number_of_queries_does_not_grow_with_layers_or_files(owner, owner_api):
    small = (big_image(owner, "s1", 1, 2), big_image(owner, "s2", 1, 2))
    large = (big_image(owner, "l1", 8, 300), big_image(owner, "l2", 8, 300, changed=10))
    for image in (*small, *large):
        with_packages(image, [("deb", f"p{n}", "1.0") for n in range(3 if image in small else 300)])

    with CaptureQueriesContext(connection) as few:
        assert owner_api.get(f"{URL}?base={small[0].pk}&head={small[1].pk}").status_code == 200
    with CaptureQueriesContext(connection) as many:
        response = owner_api.get(f"{URL}?base={large[0].pk}&head={large[1].pk}")

    assert response.status_code == 200
    assert response.json()["files"]["counts"]["changed"] == 8 * 10
    assert response.json()["packages"]["known"] is True
    assert len(many) == len(few) <= 6


@pytest.mark.parametrize("shared", [True, False], ids=["shared-layers", "nothing-shared"])
def test_thousands_of_files_compare_in_well_under_a_second(owner, owner_api, shared):
    # 20,000 paths in each image; bench/compare.py measures bigger ones.
    base = big_image(owner, "b1", 4, 5000, base="layer" if shared else "other")
    head = big_image(owner, "b2", 4, 5000, changed=100)
    # This process's CPU time (the database is SQLite in it, or PostgreSQL's answer is waited for): what other
    # work on the machine does not stretch.
    started = time.process_time()
    body = owner_api.get(f"{URL}?base={base.pk}&head={head.pk}").json()
    elapsed = time.process_time() - started
    files = body["files"]
    if shared:
        assert files["counts"] == {"added": 0, "removed": 0, "changed": 400} and files["bytes"] == 400
    else:
        assert files["counts"] == {"added": 20_000, "removed": 20_000, "changed": 0} and files["truncated"]
    assert elapsed < 1.0, f"{elapsed:.2f} s"
