from __future__ import annotations

import io

from django.urls import reverse

from builds.models import Source
from builds.services import repositories
from tests.builds.test_api_context import TREE, tar_bytes


def make_source(repository) -> Source:
    return repositories.add_archive_source(repository, io.BytesIO(tar_bytes(TREE, "gz")), "tree.tgz")


def test_it_shows_the_tree_with_excluded_files_and_their_patterns(owner_client, repository):
    source = make_source(repository)
    response = owner_client.get(reverse("builds:source-detail", args=[source.pk]))
    assert response.status_code == 200
    rows = {row.path: row for row in response.context["rows"]}
    assert rows["debug.log"].sent is False and rows["debug.log"].pattern == "*.log"
    assert rows["node_modules/lib/index.js"].pattern == "node_modules"
    assert rows["node_modules/keep.js"].sent is True
    assert rows["node_modules"].is_folder and rows["node_modules"].size == 305
    assert rows["node_modules"].sent_size == 5
    content = response.content.decode()
    assert "*.log\nnode_modules\n!node_modules/keep.js" in content
    assert "likely secret" in content


def test_it_previews_another_dockerfile_and_folder(owner_client, repository):
    source = make_source(repository)
    response = owner_client.get(reverse("builds:source-detail", args=[source.pk]), {"dockerfile": "Dockerfile",
                                                                            "path": "services/api"})
    assert {row.path for row in response.context["rows"]} == {".dockerignore", "Dockerfile", "main.sh", "tmp",
                                                              "tmp/cache"}


def test_a_missing_dockerfile_is_shown_not_raised(owner_client, repository):
    source = make_source(repository)
    response = owner_client.get(reverse("builds:source-detail", args=[source.pk]), {"dockerfile": "Nope"})
    assert response.status_code == 200
    assert "There is no &#x27;Nope&#x27;" in response.content.decode()


def test_an_outsider_gets_404(client, outsider, repository):
    source = make_source(repository)
    client.force_login(outsider)
    assert client.get(reverse("builds:source-detail", args=[source.pk])).status_code == 404
    assert client.post(reverse("builds:source-delete", args=[source.pk])).status_code == 404
    assert Source.objects.filter(pk=source.pk).exists()


def test_deleting_needs_post(owner_client, repository):
    source = make_source(repository)
    assert owner_client.get(reverse("builds:source-delete", args=[source.pk])).status_code == 405
    response = owner_client.post(reverse("builds:source-delete", args=[source.pk]))
    assert response.status_code == 302
    assert not Source.objects.exists()
