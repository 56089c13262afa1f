"""The authorisation matrix: every URL of the URL configuration, as another user and as nobody.

The URLs come from `get_resolver()`, walked recursively, so a new page or endpoint is in the matrix the day it is
added. A URL that takes an id gets the id of the owner's object of the kind its path names (KIND_OF_PREFIX); a
URL with an id or another argument the matrix does not know fails the test, so nothing is skipped silently.

- As an outsider (another signed-in user), GET/POST/PUT/PATCH/DELETE on each of the owner's objects answers 404 or
  403 (405 only where the same request for an id that does not exist is a 405 too: the method is not served at
  all), nothing in the database changes, and no answer the outsider gets carries the owner's marker.
- As the owner, GET on the same URLs finds the object (not a 404): the outsider's 404s are not broken URLs.
- Anonymous: 401 on the API, a redirect to the login page on browser pages, a redirect to the admin's login page
  under admin/ (staff only), except the PUBLIC pages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern
from rest_framework.test import APIClient

from console.accounts.services import create_access_token
from registry.services import ensure_console_account
from tests.conftest import PASSWORD
from tests.security.conftest import make_objects

MARKER = "ownedxq7"
METHODS = ("get", "post", "put", "patch", "delete")
API_PREFIX = "api/v1/"
ADMIN_PREFIX = "admin/"

# Open to anyone, by their URL pattern: what each is for says why.
PUBLIC = {
    "healthz": "the health check load balancers call",
    "accounts/signup/": "making an account",
    "accounts/login/": "signing in",
    "accounts/logout/": "ends the caller's own session, if any",
    "api/schema/": "the OpenAPI schema",
    "api/docs/": "the API docs page",
    "registry/token/": "the registry's token realm: anonymous gets public pulls only",
    "registry/notifications/": "the registry's notifications: refused (401) without the secret config.yml holds",
    "api/v1/auth/signup/": "making an account through the API",
    "api/v1/auth/token/": "getting a token with a username and password",
    "admin/login/": "the admin's sign-in page",
    "admin/logout/": "ends the caller's own admin session; sends anyone else to the admin's index",
}

# Which of the owner's objects an id names, by the path before it (without /api/v1/).
KIND_OF_PREFIX = {
    "repositories": "repository",
    "sources": "source",
    "source-imports": "source_import",
    "builds": "build",
    "images": "image",
    "registries": "registry",
    "pushes": "push",
    "pulls": "pull",
    "hosts": "host",
    "deployments": "deployment",
    "auth/tokens": "token",
    "accounts/tokens": "token",
    "build-nodes": "build_node",
    "webhooks": "webhook",
    "pending-releases": "pending_release",
    "events": "event",
    "vulnerabilities/imports": "vulnerability_import",
    "registry/gc": "garbage_collection",
}
# Arguments that are ids of an object inside the one the path names: the owner's object of that kind.
INNER_ID_ARGUMENTS = {"delivery_id": "delivery"}
ID_ARGUMENTS = {"pk", "id"}
# Arguments that are not ids, with a value that names something of the owner's object where that matters.
OTHER_ARGUMENTS = {
    "cid": "c0ffee",
    "verb": "stop",
    "action": "stop",
    "name": f"{MARKER}/app",
    "index": "0",
    "tag": "1",
    # A swarm node id (25 of [a-z0-9]): well formed, so that the refusal tested is the host's, not the id's.
    "node_id": "n" * 25,
}
# Under admin/ every page is for staff only, whatever it names: these make the URLs resolve.
ADMIN_ARGUMENTS = {"object_id": "1", "id": "1", "content_type_id": "1", "app_label": "auth", "url": "nowhere/"}
MISSING_ID = 987654321
GATEWAY_ERRORS = {502, 503}
SNAPSHOT_IGNORES = {"last_login", "last_used"}


@dataclass(frozen=True)
class Route:
    pattern: str
    parts: tuple
    arguments: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return self.pattern.startswith(ADMIN_PREFIX)

    @property
    def is_api(self) -> bool:
        return self.pattern.startswith(API_PREFIX)


def _readable(pattern) -> str:
    text = str(pattern)
    return text.removeprefix("^").removesuffix("$") if isinstance(pattern, RegexPattern) else text


def _walk(resolver, parts: tuple = ()) -> Iterator[Route]:
    for entry in resolver.url_patterns:
        here = (*parts, entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry, here)
        elif isinstance(entry, URLPattern):
            arguments = tuple(name for part in here for name in _arguments(part))
            yield Route("".join(_readable(part) for part in here), here, arguments)


def _arguments(pattern) -> list[str]:
    if isinstance(pattern, RoutePattern):
        return re.findall(r"<(?:\w+:)?(\w+)>", str(pattern))
    return list(re.compile(str(pattern)).groupindex)


def _fill_regex(regex: str, values: dict[str, str]) -> str:
    """A path matching `regex`, its named groups replaced by `values` (groups may hold parentheses)."""
    out, i = [], 0
    while i < len(regex):
        if regex.startswith("(?P<", i):
            name = regex[i + 4:regex.index(">", i)]
            depth, j = 0, i
            while True:
                depth += {"(": 1, ")": -1}.get(regex[j], 0) if regex[j - 1:j] != "\\" else 0
                j += 1
                if depth == 0:
                    break
            out.append(values[name])
            i = j
        else:
            out.append(regex[i])
            i += 1
    return re.sub(r"\\(.)", r"\1", "".join(out).removeprefix("^").removesuffix("$"))


def _url(route: Route, values: dict[str, str]) -> str:
    path = ""
    for part in route.parts:
        if isinstance(part, RoutePattern):
            path += re.sub(r"<(?:\w+:)?(\w+)>", lambda match: values[match.group(1)], str(part))
        else:
            path += _fill_regex(str(part), values)
    return "/" + path


def _kind(route: Route) -> str | None:
    before = re.split(r"<|\(\?P<", route.pattern.removeprefix(API_PREFIX), maxsplit=1)[0].strip("/")
    return KIND_OF_PREFIX.get(before)


def all_routes() -> list[Route]:
    return list(_walk(get_resolver()))


def _values(route: Route, objects: dict, missing: bool = False) -> dict[str, str]:
    """The arguments of a URL; raises LookupError naming what the matrix does not know."""
    if route.is_admin:
        return {name: ADMIN_ARGUMENTS[name] for name in route.arguments}
    values = {}
    for name in route.arguments:
        if name in ID_ARGUMENTS:
            kind = _kind(route)
            if kind is None:
                raise LookupError(f"{route.pattern}: its `{name}` names no kind the matrix knows; add its path to "
                                  "KIND_OF_PREFIX and the object to tests/security/conftest.py:make_objects")
            values[name] = str(MISSING_ID if missing else objects[kind].pk)
        elif name in INNER_ID_ARGUMENTS:
            values[name] = str(objects[INNER_ID_ARGUMENTS[name]].pk)
        elif name in OTHER_ARGUMENTS:
            values[name] = OTHER_ARGUMENTS[name]
        else:
            raise LookupError(f"{route.pattern}: the matrix knows no value for `{name}`; add one to OTHER_ARGUMENTS")
    return values


def _url_for(route: Route, objects: dict, missing: bool = False) -> str:
    values = _values(route, objects, missing)
    url = _url(route, values)
    match = resolve(url)
    resolved = {key: str(value) for key, value in match.kwargs.items()}
    assert resolved == values or route.is_admin, f"{route.pattern}: {url} resolves to {match.route}"
    return url


def _request(client, method: str, url: str, api: bool):
    if api and method in ("post", "put", "patch"):
        return getattr(client, method)(url, {}, format="json")
    return getattr(client, method)(url)


def _snapshot() -> dict[str, list[dict]]:
    """Every row of every model (without the fields that record a sign-in or a token's use)."""
    rows = {}
    for model in apps.get_models():
        values = model.objects.order_by("pk").values()
        rows[model._meta.label] = [
            {key: value for key, value in row.items() if key not in SNAPSHOT_IGNORES} for row in values
        ]
    return rows


def _snapshot_changes(before: dict, after: dict) -> list[str]:
    return [f"{label}: {len(before[label])} rows before, {len(after[label])} after, or a row changed"
            for label in before if before[label] != after[label]]


def _body(response) -> str:
    content = getattr(response, "content", b"")
    if getattr(response, "streaming", False):
        content = b"".join(response.streaming_content)
    return content.decode(errors="replace")


def _is_login_redirect(response, login_path: str) -> bool:
    return response.status_code == 302 and urlsplit(response["Location"]).path == login_path


@pytest.fixture
def world(db):
    users = get_user_model().objects
    owner = users.create_user("alice", "alice@example.com", PASSWORD)
    outsider = users.create_user("mallory", "mallory@example.com", PASSWORD)
    objects = make_objects(owner, MARKER)
    # The registries pages add the console's own account on a user's first visit: have both now, so that only
    # what the sweep itself does shows in the database.
    ensure_console_account(owner)
    ensure_console_account(outsider)
    browser, api = Client(), APIClient()
    browser.force_login(outsider)
    _token, raw = create_access_token(outsider, "matrix")
    api.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    owner_browser, owner_api = Client(), APIClient()
    owner_browser.force_login(owner)
    owner_api.force_authenticate(owner)
    return {"objects": objects, "outsider": (browser, api), "owner": (owner_browser, owner_api)}


def test_it_knows_every_url_argument_and_the_kind_of_every_id(world):
    unknown = []
    for route in all_routes():
        try:
            _url_for(route, world["objects"])
        except LookupError as exc:
            unknown.append(str(exc))
    assert not unknown, "\n".join(unknown)


def test_it_lists_only_public_pages_that_exist():
    patterns = {route.pattern for route in all_routes()}
    assert set(PUBLIC) <= patterns, set(PUBLIC) - patterns


def test_it_finds_each_of_the_owners_objects_at_its_urls(world):
    """The control: the owner's GET finds the object, so the outsider's 404s below are not broken URLs."""
    browser, api = world["owner"]
    problems = []
    for route in all_routes():
        if not route.arguments or route.is_admin:
            continue
        url = _url_for(route, world["objects"])
        response = _request(api if route.is_api else browser, "get", url, route.is_api)
        status = response.status_code
        if status == 404 or (status >= 500 and status not in GATEWAY_ERRORS):
            problems.append(f"GET {url} ({route.pattern}) as the owner: {status} {_body(response)[:200]}")
    assert not problems, "\n".join(problems)


def test_it_answers_an_outsider_404_or_403_for_every_url_of_another_users_object(world):
    browser, api = world["outsider"]
    objects = world["objects"]
    # Warm up: a first visit of a list page may add the visitor's own things (the console's registry account).
    for route in all_routes():
        if not route.arguments and not route.is_admin and route.pattern not in PUBLIC:
            _request(api if route.is_api else browser, "get", _url_for(route, objects), route.is_api)
    before = _snapshot()
    problems = []
    for route in all_routes():
        if route.is_admin:
            continue
        client = api if route.is_api else browser
        if not route.arguments:
            # No object of the owner's is named: GET only, to see that no list leaks the owner's things.
            response = _request(client, "get", _url_for(route, objects), route.is_api)
            if MARKER in _body(response):
                problems.append(f"GET {route.pattern} shows the owner's objects to an outsider")
            continue
        url, missing_url = _url_for(route, objects), _url_for(route, objects, missing=True)
        for method in METHODS:
            response = _request(client, method, url, route.is_api)
            status = response.status_code
            if status == 405:
                control = _request(client, method, missing_url, route.is_api).status_code
                allowed = control == 405
            else:
                allowed = status in (403, 404)
            if not allowed:
                problems.append(f"{method.upper()} {url} ({route.pattern}) as an outsider: {status} "
                                f"{_body(response)[:200]}")
            elif MARKER in _body(response):
                problems.append(f"{method.upper()} {url} as an outsider: {status} names the owner's object")
    problems += _snapshot_changes(before, _snapshot())
    assert not problems, "\n".join(problems)


def test_it_answers_anonymous_requests_401_on_the_api_and_a_redirect_to_sign_in_elsewhere(world):
    browser, api = Client(), APIClient()
    objects = world["objects"]
    before = _snapshot()
    problems = []
    for route in all_routes():
        url = _url_for(route, objects)
        client = api if route.is_api else browser
        for method in METHODS:
            response = _request(client, method, url, route.is_api)
            status, where = response.status_code, f"{method.upper()} {url} ({route.pattern}) anonymously"
            if MARKER in _body(response):
                problems.append(f"{where}: {status} names the owner's object")
            if route.pattern in PUBLIC:
                if status >= 500 and route.pattern != "healthz":
                    problems.append(f"{where}: {status} on a public page")
            elif route.is_api:
                if status != 401:
                    problems.append(f"{where}: {status}, not 401")
                elif "WWW-Authenticate" not in response:
                    problems.append(f"{where}: a 401 without WWW-Authenticate")
            elif route.is_admin:
                if not _is_login_redirect(response, "/admin/login/"):
                    problems.append(f"{where}: {status}, not a redirect to the admin's login page")
            elif not _is_login_redirect(response, "/accounts/login/"):
                problems.append(f"{where}: {status}, not a redirect to the login page")
    problems += _snapshot_changes(before, _snapshot())
    assert not problems, "\n".join(problems)


def test_it_keeps_the_admin_for_staff_even_from_signed_in_users(world):
    browser, _api = world["outsider"]
    problems = []
    for route in all_routes():
        if not route.is_admin or route.pattern in PUBLIC:
            continue
        url = _url_for(route, world["objects"])
        for method in METHODS:
            response = _request(browser, method, url, api=False)
            if not _is_login_redirect(response, "/admin/login/"):
                problems.append(f"{method.upper()} {url} as a signed-in user who is not staff: "
                                f"{response.status_code} {response.get('Location', '')}")
    assert not problems, "\n".join(problems)


def test_it_shows_the_matrix_covers_urls_of_every_kind():
    kinds = {_kind(route) for route in all_routes() if set(route.arguments) & ID_ARGUMENTS and not route.is_admin}
    assert kinds == set(KIND_OF_PREFIX.values()), json.dumps(sorted(map(str, kinds)))


def test_it_refuses_to_create_anything_from_another_users_objects(world):
    """Creating endpoints take ids in their bodies: naming the owner's objects there is refused too."""
    _browser, api = world["outsider"]
    objects = world["objects"]
    own_console = ensure_console_account(get_user_model().objects.get(username="mallory"))
    bodies = {
        "/api/v1/builds/": {"source": objects["source"].pk},
        "/api/v1/pushes/": {"image": str(objects["image"].pk), "registry": own_console.pk,
                            "repository": "mallory/stolen", "tag": "1"},
        "/api/v1/pulls/": {"registry": objects["registry"].pk, "reference": f"{MARKER}/app:1"},
        "/api/v1/deployments/": {"name": "stolen", "image": "busybox:1.35.0", "hosts": [objects["host"].pk]},
    }
    bodies_via_registry = {
        "/api/v1/pushes/": {"image": "busybox:1.35.0", "registry": objects["registry"].pk,
                            "repository": "team/app", "tag": "1"},
        "/api/v1/deployments/": {"name": "stolen", "image": "busybox:1.35.0", "registry": objects["registry"].pk,
                                 "selector": f"env={MARKER}"},
    }
    before = _snapshot()
    problems = []
    for url, body in [*bodies.items(), *bodies_via_registry.items()]:
        response = api.post(url, body, format="json")
        if response.status_code not in (400, 404) or MARKER in _body(response):
            problems.append(f"POST {url} {body}: {response.status_code} {_body(response)[:200]}")
    for url in (f"/api/v1/builds/?repository={objects['repository'].pk}",
                f"/api/v1/images/?repository={objects['repository'].pk}",
                f"/api/v1/deployments/?name={MARKER}-app"):
        response = api.get(url)
        if response.status_code not in (200, 400) or (response.status_code == 200 and response.json()["results"]):
            problems.append(f"GET {url}: {response.status_code} {_body(response)[:200]}")
    problems += _snapshot_changes(before, _snapshot())
    assert not problems, "\n".join(problems)
