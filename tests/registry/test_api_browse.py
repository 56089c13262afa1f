"""GET /api/v1/registries/{id}/repositories/ and .../repositories/{name}/tags/ through the Registry HTTP API."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from registry import services
from registry.models import RegistryAccount
from tests.registry.helpers import account_for

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


@pytest.fixture(scope="module")
def pushed(htpasswd_registry, docker_cli_module):
    """Two repositories with tags on the htpasswd registry, pushed by the real CLI."""
    cli = docker_cli_module
    login = cli("login", htpasswd_registry.address, "-u", htpasswd_registry.username, "--password-stdin",
                input=htpasswd_registry.password)
    assert login.returncode == 0, login.stderr
    references = [f"{htpasswd_registry.address}/{name}" for name in ("browse/one:1", "browse/one:2", "browse/two:a")]
    for reference in references:
        assert cli("tag", "busybox:1.35.0", reference).returncode == 0
        push = cli("push", reference)
        assert push.returncode == 0, push.stderr
        cli("rmi", "--no-prune", reference)
    return htpasswd_registry


@pytest.fixture(scope="module")
def docker_cli_module(tmp_path_factory):
    from tests.fixtures.registry import DockerCLI

    return DockerCLI(tmp_path_factory.mktemp("docker-config"))


def test_it_lists_repositories_and_tags(owner_api, owner, pushed):
    account = account_for(owner, pushed)
    response = owner_api.get(f"/api/v1/registries/{account.pk}/repositories/")
    assert response.status_code == 200
    assert {"browse/one", "browse/two"} <= set(response.json()["repositories"])
    tags = owner_api.get(f"/api/v1/registries/{account.pk}/repositories/browse/one/tags/")
    assert tags.status_code == 200
    assert tags.json() == {"name": "browse/one", "tags": ["1", "2"]}


def test_an_unknown_repository_is_a_clear_502(owner_api, owner, pushed):
    account = account_for(owner, pushed)
    response = owner_api.get(f"/api/v1/registries/{account.pk}/repositories/browse/none/tags/")
    assert response.status_code == 502
    assert response.json()["detail"] == "The registry has no repository 'browse/none'."


def test_a_wrong_password_is_a_fixed_message(owner_api, owner, pushed):
    account = account_for(owner, pushed, secret="not-it-5555")
    response = owner_api.get(f"/api/v1/registries/{account.pk}/repositories/browse/one/tags/")
    assert response.status_code == 502
    assert response.json()["detail"] == "The registry refused these credentials."
    assert "not-it-5555" not in response.content.decode()


class _NoCatalog(BaseHTTPRequestHandler):
    """A registry like Docker Hub's: /v2/ answers, the catalog is closed."""

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        if self.path == "/v2/":
            self._answer(200, {})
        else:
            self._answer(404, {"errors": [{"code": "NOT_FOUND", "message": "page not found"}]})

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def no_catalog_registry():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoCatalog)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_registry_without_a_catalog_says_so(owner_api, owner, no_catalog_registry):
    account = RegistryAccount.objects.create(owner=owner, name="hub-like", kind="generic", url=no_catalog_registry)
    response = owner_api.get(f"/api/v1/registries/{account.pk}/repositories/")
    assert response.status_code == 502
    assert response.json()["detail"] == services.NO_CATALOG


def test_an_outsider_gets_404(api_client, owner, outsider, pushed):
    account = account_for(owner, pushed)
    api_client.force_authenticate(outsider)
    assert api_client.get(f"/api/v1/registries/{account.pk}/repositories/").status_code == 404
    assert api_client.get(f"/api/v1/registries/{account.pk}/repositories/browse/one/tags/").status_code == 404


def test_browsing_needs_get(owner_api, owner, pushed):
    account = account_for(owner, pushed)
    assert owner_api.post(f"/api/v1/registries/{account.pk}/repositories/").status_code == 405


def test_it_makes_a_console_repository_public_and_private(owner_api, owner):
    account = services.ensure_console_account(owner)
    url = f"/api/v1/registries/{account.pk}/repositories/alice/app/public/"
    assert owner_api.put(url).json() == {"name": "alice/app", "public": True}
    assert owner_api.delete(url).json() == {"name": "alice/app", "public": False}
    other = f"/api/v1/registries/{account.pk}/repositories/mallory/app/public/"
    assert owner_api.put(other).status_code == 400
