"""schemathesis against the console's own OpenAPI schema (/api/schema/), through the WSGI app.

Every operation of the schema is one test: a few generated requests each (bodies, query strings, path values),
authenticated with a personal access token, and every answer must be no server error, have the content type the
schema names and, for the status codes the schema describes, match the schema.

Nothing reaches beyond this machine: each operation runs in its own rolled-back transaction, so the builds,
pushes, pulls, deployments and host checks it creates are never handed to a worker (they are enqueued on
commit); path ids are pinned to this user's objects, whose hosts and registries are 127.0.0.1:9; and a git URL
that would go over the network is turned into a local path that does not exist.
"""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from console.accounts.services import create_access_token
from fleet.models import Deployment
from registry.models import Pull, Push
from tests.security.conftest import make_objects

# Needs the real engine (left out of `make test-fast`).
pytestmark = pytest.mark.engine

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())

# Which of the user's objects a path's `{id}` names, by the path's first segment under /api/v1/.
KIND_OF_PATH = {
    "auth": "token", "build-nodes": "build_node", "builds": "build", "deployments": "deployment", "hosts": "host",
    "images": "image", "pulls": "pull", "pushes": "push", "registries": "registry", "repositories": "repository",
    "sources": "source", "source-imports": "source_import", "vulnerabilities": "vulnerability_import",
    "events": "event", "webhooks": "webhook", "pending-releases": "pending_release", "registry": "garbage_collection",
}
NETWORK_GIT_SCHEMES = ("https", "ssh", "http", "git")
# What an operation that talks to an engine or a registry answers when it does not answer (127.0.0.1:9 here).
GATEWAY_ERRORS = (502, 503, 504)


def no_server_error(ctx, response, case) -> None:
    """No 5xx, except the gateway errors an operation documents for its engine or registry being down."""
    status = response.status_code
    documented = status in GATEWAY_ERRORS and str(status) in case.operation.responses.status_codes
    if status >= 500 and not documented:
        raise AssertionError(f"{case.operation.label} answered {status}: {response.text[:2000]}")


def success_conforms(ctx, response, case) -> None:
    """A successful answer has the documented content type and shape. (Error bodies are not checked: many
    operations answer field errors, `{"field": ["..."]}`, where the schema names only `{"detail"}`.)"""
    if 200 <= response.status_code < 300:
        content_type_conformance(ctx, response, case)
        response_schema_conformance(ctx, response, case)


CHECKS = [no_server_error, success_conforms]


@pytest.fixture
def wsgi_keeps_the_test_transaction():
    """The real WSGI handler closes the database connection after each request, which would end the test's
    transaction; Django's own test client does the same as this while it serves a request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_user(db, wsgi_keeps_the_test_transaction):
    # Staff, so that the staff-only operations (the build farm's nodes) run past their permission check too.
    user = get_user_model().objects.create_user("fuzzer", "fuzzer@example.com", "fuzzer password 1234", is_staff=True)
    objects = make_objects(user, "fuzzed")
    _token, raw = create_access_token(user, "schemathesis")
    return objects, {"Authorization": f"Token {raw}"}


def _pin_to_own_objects(case, objects) -> None:
    """Point `{id}` at the user's own object of that kind: the answer then comes from the code past the
    ownership check, and no id can land on something another operation created."""
    if "id" not in (case.path_parameters or {}):
        return
    first = case.operation.path.removeprefix("/api/v1/").split("/")[0]
    kind = KIND_OF_PATH.get(first)
    assert kind, f"{case.operation.path}: which kind of object does its id name? Add it to KIND_OF_PATH."
    case.path_parameters["id"] = objects[kind].pk


def _refer_to_own_objects(case, objects) -> None:
    """Where a generated body names a source, registry account or hosts, name the user's own: the request then
    gets past the ownership checks into the option checks (a build, push, pull or deployment is created, and is
    never started: it is handed to a worker only when the test's transaction commits, which it never does)."""
    body = case.body
    if not isinstance(body, dict):
        return
    references = {"source": objects["source"].pk, "registry": objects["registry"].pk,
                  "hosts": [objects["host"].pk]}
    for field, value in references.items():
        if field in body:
            body[field] = value


def _keep_git_local(case) -> None:
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("git_url"), str):
        if urlsplit(body["git_url"]).scheme.lower() in NETWORK_GIT_SCHEMES:
            body["git_url"] = "file:///nonexistent/schemathesis.git"


# Serial: Schemathesis gives every operation's case one node id, and pytest-xdist then runs one of the 113 and
# reports it as all of them (scripts/test.sh runs this in its one-process phase).
@pytest.mark.serial
@schema.parametrize()
@settings(max_examples=6, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
def test_it_answers_every_generated_request_without_a_server_error(case, fuzz_user):
    objects, headers = fuzz_user
    _pin_to_own_objects(case, objects)
    _refer_to_own_objects(case, objects)
    _keep_git_local(case)
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    # The token is valid: a 401 would mean every answer came from the authentication wall, testing nothing.
    assert response.status_code != 401, response.text


def test_it_counts_a_server_error_and_an_undocumented_gateway_error_as_failures():
    operation = schema["/api/v1/hosts/{id}/containers/"]["GET"]
    case = operation.Case(path_parameters={"id": 1})
    for status, fails in [(500, True), (502, True), (503, False), (404, False)]:
        response = SimpleNamespace(status_code=status, text="boom")
        if fails:
            with pytest.raises(AssertionError):
                no_server_error(None, response, case)
        else:
            no_server_error(None, response, case)


# What the run found, kept as plain tests (against the real build engine, which answers 400, not 404, for a
# reference it cannot parse).

@pytest.mark.engine
def test_it_refuses_a_malformed_image_reference_to_push_or_deploy_with_a_400(owner, owner_api):
    objects = make_objects(owner, "refs")
    push = owner_api.post("/api/v1/pushes/", {"image": "UPPER", "registry": objects["registry"].pk,
                                              "repository": "team/app"}, format="json")
    deploy = owner_api.post("/api/v1/deployments/", {"image": "UPPER", "name": "app",
                                                     "hosts": [objects["host"].pk]}, format="json")
    assert (push.status_code, deploy.status_code) == (400, 400)
    assert "no image 'UPPER'" in push.json()["image"][0]
    assert "no image 'UPPER'" in deploy.json()["image"][0]
    assert not Push.objects.filter(image="UPPER").exists() and not Deployment.objects.filter(image="UPPER").exists()


def test_it_refuses_a_pull_reference_that_its_default_tag_makes_too_long(owner, owner_api):
    registry = make_objects(owner, "long")["registry"]
    before = Pull.objects.count()
    response = owner_api.post("/api/v1/pulls/", {"reference": "a" * 400, "registry": registry.pk}, format="json")
    assert response.status_code == 400
    assert response.json() == {"reference": ["The reference is too long."]}
    assert Pull.objects.count() == before


def test_it_matches_nothing_for_a_list_filter_holding_a_nul(owner, owner_api):
    make_objects(owner, "nul")
    builds = owner_api.get("/api/v1/builds/?status=succeeded%00")
    deployments = owner_api.get("/api/v1/deployments/?name=nul-app%00")
    assert (builds.status_code, builds.json()["results"]) == (200, [])
    assert (deployments.status_code, deployments.json()["results"]) == (200, [])
    assert len(owner_api.get("/api/v1/deployments/?name=nul-app").json()["results"]) == 1
