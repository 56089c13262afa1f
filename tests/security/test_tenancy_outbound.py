"""Outbound requests on a user's behalf, replayed as an attacker would: registry accounts aimed at the console's own
machine, registries that redirect there or name a token realm there, and git URLs that read the console's disk.

An "internal service" here is an HTTP server on loopback whose every answer holds INTERNAL-SECRET. The production
default (`OUTBOUND_ALLOWED_NETWORKS = []`) refuses it outright for users who are not staff; with an operator's
allowance the console may talk to it, but what it answered never reaches the user.
"""

from __future__ import annotations

import http.server

import pytest
from django.urls import reverse

from builds.models import Source, SourceImport
from builds.services import repositories as build_services
from registry import services
from registry.client import NOT_A_REGISTRY
from registry.models import Pull, RegistryAccount
from tests.fixtures.http import serving
from tests.fixtures.registry import console_registry, open_registry, token_registry  # noqa: F401  (fixtures)

SECRET = "INTERNAL-SECRET"
pytestmark = pytest.mark.django_db


class InternalService(http.server.BaseHTTPRequestHandler):
    """Answers every request with the secret, in the body and in a header, as a database console or a cloud
    metadata service would answer something."""

    status = 200
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = f'{{"errors": [{{"message": "{SECRET}"}}], "repositories": ["{SECRET}"]}}'.encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Internal", SECRET)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass




def internal_service(status: int = 200):
    hits: list[str] = []
    handler = type("Internal", (InternalService,), {"status": status, "hits": hits})
    return serving(handler), hits


@pytest.fixture
def internal():
    context, hits = internal_service()
    with context as url:
        yield url, hits


@pytest.fixture
def production_allowance(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []


def generic(owner, url: str, name: str = "target") -> RegistryAccount:
    """An account made directly in the database, as one made before the policy (or allowed then) would be."""
    return RegistryAccount.objects.create(owner=owner, name=name, kind="generic", url=url, username="u", secret="p")


# -- accounts aimed at the console's own machine ------------------------------------------------------------------


def test_a_loopback_registry_is_refused_at_creation(owner_api, internal, production_allowance):
    url, hits = internal
    response = owner_api.post("/api/v1/registries/", {"name": "probe", "kind": "generic", "url": url,
                                                      "username": "u", "secret": "p"}, format="json")
    assert response.status_code == 400
    assert "loopback" in response.json()["url"][0]
    assert not RegistryAccount.objects.filter(name="probe").exists()
    assert hits == []


def test_moving_an_account_to_loopback_is_refused(owner_api, owner, internal, production_allowance):
    account = generic(owner, "https://registry.example.com")
    response = owner_api.patch(f"/api/v1/registries/{account.pk}/", {"url": internal[0]}, format="json")
    assert response.status_code == 400
    assert "loopback" in response.json()["url"][0]
    account.refresh_from_db()
    assert account.url == "https://registry.example.com"


def test_the_browser_form_refuses_it_too(owner_client, internal, production_allowance):
    response = owner_client.post(reverse("registry:registry-create"),
                                 {"name": "probe", "kind": "generic", "url": internal[0]})
    assert response.status_code == 200
    assert "loopback" in str(response.context["form"].errors["url"])
    assert not RegistryAccount.objects.filter(name="probe").exists()


@pytest.mark.parametrize("url", ["http://localhost:2375", "http://[::1]:5432", "http://169.254.169.254",
                                 "http://0.0.0.0:6379", "http://127.1:8000"])
def test_other_spellings_of_the_machine_are_refused(owner_api, url, production_allowance):
    response = owner_api.post("/api/v1/registries/", {"name": "probe", "kind": "generic", "url": url},
                              format="json")
    assert response.status_code == 400, response.json()
    assert not RegistryAccount.objects.filter(name="probe").exists()


def test_an_existing_loopback_account_is_refused_before_every_call(owner_api, owner, internal, production_allowance):
    url, hits = internal
    account = generic(owner, url)
    body = owner_api.post(f"/api/v1/registries/{account.pk}/test/").json()
    assert body["ok"] is False and "loopback" in body["detail"]
    for path in (f"/api/v1/registries/{account.pk}/repositories/",
                 f"/api/v1/registries/{account.pk}/repositories/team/app/tags/"):
        response = owner_api.get(path)
        assert response.status_code == 502 and "loopback" in response.json()["detail"]
    response = owner_api.post("/api/v1/pulls/", {"registry": account.pk, "reference": "team/app:1"}, format="json")
    assert response.status_code == 400 and "loopback" in str(response.json())
    assert not Pull.objects.exists()
    # What the worker asks right before it hands the registry to the engine.
    with pytest.raises(services.RegistryError, match="loopback"):
        services.auth_config_for(account, "team/app", {"pull"})
    assert hits == []


# -- with an operator's allowance the console talks to it, and reflects nothing -----------------------------------


@pytest.mark.parametrize("status", [200, 401, 404, 500, 418])
def test_what_an_internal_service_answers_is_never_reflected(owner_api, owner, status):
    context, hits = internal_service(status)
    with context as url:
        account = generic(owner, url)
        test = owner_api.post(f"/api/v1/registries/{account.pk}/test/")
        browse = owner_api.get(f"/api/v1/registries/{account.pk}/repositories/")
        tags = owner_api.get(f"/api/v1/registries/{account.pk}/repositories/team/app/tags/")
        page = owner_api.get(reverse("registry:registry-detail", args=[account.pk]))
    assert hits, "the allowance lets the console reach the service: the answers were read, and not shown"
    assert test.json()["ok"] is False
    if status in (200, 404):
        assert test.json()["detail"] == NOT_A_REGISTRY.format(base=url)
    for response in (test, browse, tags, page):
        assert SECRET not in response.content.decode()


def test_a_redirect_to_a_refused_address_is_not_followed(owner_api, owner, internal, settings):
    """The registry (on 127.0.0.2, which the operator allowed) sends the console to 127.0.0.1 (not allowed)."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    target, hits = internal

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(307)
            self.send_header("Location", f"{target}{self.path}")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    with serving(Redirect, host="127.0.0.2") as url:
        account = generic(owner, url)
        body = owner_api.post(f"/api/v1/registries/{account.pk}/test/").json()
        browse = owner_api.get(f"/api/v1/registries/{account.pk}/repositories/")
    assert body["ok"] is False and "loopback" in body["detail"]
    assert browse.status_code == 502 and "loopback" in browse.json()["detail"]
    assert hits == []


def test_a_token_realm_at_a_refused_address_is_not_asked(owner_api, owner, internal, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    target, hits = internal

    class Challenge(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="{target}/token",service="x",scope="y"')
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    with serving(Challenge, host="127.0.0.2") as url:
        account = generic(owner, url)
        body = owner_api.post(f"/api/v1/registries/{account.pk}/test/").json()
    assert body["ok"] is False and "loopback" in body["detail"]
    assert hits == []


# -- staff and the console's own registry -------------------------------------------------------------------------


def test_staff_may_use_a_loopback_registry(staff_api, open_registry, production_allowance):  # noqa: F811
    response = staff_api.post("/api/v1/registries/", {"name": "local", "kind": "generic", "url": open_registry.url},
                              format="json")
    assert response.status_code == 201, response.json()
    body = staff_api.post(f"/api/v1/registries/{response.json()['id']}/test/").json()
    assert body["ok"] is True, body


@pytest.mark.django_db(transaction=True)
def test_the_consoles_own_registry_is_always_reached(console_registry, owner_api, production_allowance):  # noqa: F811
    accounts = owner_api.get("/api/v1/registries/").json()["results"]
    console_id = next(item["id"] for item in accounts if item["kind"] == "console")
    body = owner_api.post(f"/api/v1/registries/{console_id}/test/").json()
    assert body["ok"] is True, body
    assert owner_api.get(f"/api/v1/registries/{console_id}/repositories/").status_code == 200


def test_a_generic_account_on_the_consoles_registry_address_is_refused(owner_api, settings, production_allowance):
    """The console's registry is for the console's own account, which carries a scoped token."""
    settings.REGISTRY_ADDRESS = "127.0.0.1:5999"
    response = owner_api.post("/api/v1/registries/", {"name": "sneak", "kind": "generic",
                                                      "url": "http://127.0.0.1:5999"}, format="json")
    assert response.status_code == 400


# -- git URLs that read the console's own disk ---------------------------------------------------------------------


@pytest.mark.parametrize("url", ["file:///work/main/.git", "file://localhost/etc", "/work/main/.git",
                                 "ext::sh -c cat% /etc/passwd", "http://127.0.0.1:8000/.git"])
def test_a_user_cannot_clone_the_consoles_disk_or_machine(owner_api, owner, url, production_allowance):
    repository = build_services.create_repository(owner, "loot")
    response = owner_api.post(f"/api/v1/repositories/{repository.pk}/sources/", {"git_url": url}, format="json")
    assert response.status_code == 400, response.json()
    assert not SourceImport.objects.exists() and not Source.objects.exists()
