"""The context preview: what the CLI would send for a Dockerfile and folder, and why the rest stays behind."""

from __future__ import annotations

import io

from builds.services import repositories
from tests.builds.archive_factory import tar_bytes

TREE = [
    ("Dockerfile", b"FROM busybox:1.35.0\nCOPY . /app\n"),
    (".dockerignore", b"# build output and noise\n*.log\nnode_modules\n!node_modules/keep.js\n.git\n"),
    ("src/app.js", b"console.log(1)\n"),
    ("debug.log", b"noise\n"),
    ("node_modules/lib/index.js", b"x" * 300),
    ("node_modules/keep.js", b"kept\n"),
    (".git/config", b"[remote]\n"),
    (".env", b"PASSWORD=x\n"),
    ("certs/server.key", b"-----BEGIN KEY-----\n"),
    ("vendor/pkg/a.go", b"package a\n"),
    ("services/api/Dockerfile", b"FROM busybox:1.35.0\n"),
    ("services/api/.dockerignore", b"tmp/\n"),
    ("services/api/main.sh", b"echo api\n"),
    ("services/api/tmp/cache", b"c\n"),
]


def url(source, **query) -> str:
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return f"/api/v1/sources/{source.pk}/context/" + (f"?{params}" if params else "")


def make_source(repository):
    return repositories.add_archive_source(repository, io.BytesIO(tar_bytes(TREE, "gz")), "tree.tgz")


def test_it_lists_included_and_excluded_files(owner_api, repository):
    source = make_source(repository)
    response = owner_api.get(url(source))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"dockerfile", "path", "included", "excluded", "file_count", "size", "warnings"}
    assert body["dockerfile"] == "Dockerfile" and body["path"] == "."
    assert "node_modules/keep.js" in body["included"]
    assert "src/app.js" in body["included"]
    assert set(body["excluded"]) == {"debug.log", "node_modules/lib/index.js", ".git/config"}
    assert body["file_count"] == len(body["included"])
    sizes = dict(TREE)
    assert body["size"] == sum(len(sizes[path]) for path in body["included"])


def test_it_warns_about_secrets_and_big_folders(owner_api, repository):
    source = make_source(repository)
    warnings = {w["path"]: w["reason"] for w in owner_api.get(url(source)).json()["warnings"]}
    assert "likely secret" in warnings[".env"]
    assert "likely secret" in warnings["certs/server.key"]
    assert "big folder" in warnings["vendor/"]
    assert ".git/" not in warnings  # excluded by the .dockerignore


def test_it_warns_about_a_large_total(owner_api, repository, settings):
    settings.CONSOLE_CONTEXT_WARN_BYTES = 100
    warnings = owner_api.get(url(make_source(repository))).json()["warnings"]
    assert any(w["path"] == "." and "over 100" in w["reason"] for w in warnings)


def test_a_context_folder_uses_its_own_dockerignore(owner_api, repository):
    source = make_source(repository)
    body = owner_api.get(url(source, path="services/api")).json()
    assert sorted(body["included"]) == [".dockerignore", "Dockerfile", "main.sh"]
    assert body["excluded"] == ["tmp/cache"]


def test_a_dockerfile_in_a_subfolder_is_relative_to_the_context(owner_api, repository):
    source = make_source(repository)
    body = owner_api.get(url(source, dockerfile="services/api/Dockerfile")).json()
    assert body["dockerfile"] == "services/api/Dockerfile"
    assert "services/api/tmp/cache" in body["included"]


def test_a_missing_dockerfile_names_the_ones_that_exist(owner_api, repository):
    source = make_source(repository)
    response = owner_api.get(url(source, dockerfile="Dockerfile.prod"))
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "There is no 'Dockerfile.prod'" in detail
    assert "Dockerfile, services/api/Dockerfile" in detail


def test_a_missing_folder_and_paths_that_leave_the_source_are_400(owner_api, repository):
    source = make_source(repository)
    assert "has no folder 'nope'" in owner_api.get(url(source, path="nope")).json()["detail"]
    assert owner_api.get(url(source, path="../..")).status_code == 400
    assert owner_api.get(url(source, dockerfile="/etc/passwd")).status_code == 400


def test_an_outsider_gets_404(api_client, outsider, repository):
    source = make_source(repository)
    api_client.force_authenticate(outsider)
    assert api_client.get(url(source)).status_code == 404


def test_it_refuses_post(owner_api, repository):
    assert owner_api.post(url(make_source(repository))).status_code == 405
