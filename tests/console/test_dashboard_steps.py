"""The dashboard's counts (each linking to its list, the console's own registry counted from the start) and its
first-steps panel for a new user; a constant number of queries whatever the user has."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry.constants import RegistryKind
from registry.models import Push, RegistryAccount
from registry.services.accounts import accounts_for
from tests.console.test_list_pages_queries import (
    add_rows,
    make_builds,
    make_deployments,
    make_repository,
    make_source,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_engine(settings):
    # The engine panel is not what these tests look at: an address where nothing listens answers at once.
    settings.DOCKER_HOST = "tcp://127.0.0.1:9"


def dashboard(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    return response


def counts(response) -> dict[str, int]:
    return {item["label"]: item["count"] for item in response.context["counts"]}


def steps(response) -> dict[str, bool]:
    return {step["name"]: step["done"] for step in response.context["steps"]}


def test_each_count_links_to_its_list(owner_client):
    html = dashboard(owner_client).content.decode()
    for url_name, label in [("builds:repository-list", "repositories"), ("builds:build-list", "builds"),
                            ("builds:image-list", "images"), ("registry:registry-list", "registries"),
                            ("fleet:host-list", "hosts"), ("fleet:deployment-list", "deployments")]:
        assert f'href="{reverse(url_name)}" id="count-{label}"' in html


def test_the_consoles_own_registry_counts_before_the_registries_page_made_it(owner_client, owner):
    assert counts(dashboard(owner_client))["Registries"] == 1
    accounts_for(owner)
    assert RegistryAccount.objects.filter(owner=owner, kind=RegistryKind.CONSOLE).count() == 1
    assert counts(dashboard(owner_client))["Registries"] == 1
    RegistryAccount.objects.create(owner=owner, name="hub", kind=RegistryKind.DOCKERHUB, url="docker.io")
    assert counts(dashboard(owner_client))["Registries"] == 2


def test_a_new_user_sees_four_steps_to_do_with_links(owner_client):
    response = dashboard(owner_client)
    html = response.content.decode()
    assert response.context["show_steps"] is True
    assert steps(response) == {"upload": False, "build": False, "push": False, "deploy": False}
    assert 'id="first-steps"' in html
    # Nothing to upload into yet: the first link makes a repository; no host yet: the last adds one.
    assert f'href="{reverse("builds:repository-create")}"' in html
    assert f'href="{reverse("registry:push-create")}"' in html
    assert f'href="{reverse("fleet:host-list")}">Add a host' in html


def test_each_step_is_done_once_the_user_did_it(owner_client, owner, outsider):
    source = make_source(make_repository(owner))
    response = dashboard(owner_client)
    assert steps(response) == {"upload": True, "build": False, "push": False, "deploy": False}
    assert f'href="{reverse("builds:repository-list")}">Your repositories' in response.content.decode()
    # A failed build is not a built image; another user's success is not this user's.
    make_builds(owner, 1, source, status="failed")
    make_builds(outsider, 1, make_source(make_repository(outsider)))
    assert steps(dashboard(owner_client))["build"] is False
    make_builds(owner, 1, source)
    assert steps(dashboard(owner_client))["build"] is True
    account = accounts_for(owner).get(kind=RegistryKind.CONSOLE)
    Push.objects.create(owner=owner, registry=account, image="app:0", repository="alice/app", status="running")
    assert steps(dashboard(owner_client))["push"] is False
    Push.objects.create(owner=owner, registry=account, image="app:0", repository="alice/app", status="succeeded")
    assert steps(dashboard(owner_client))["push"] is True
    make_deployments(owner, 1, status="failed")
    assert steps(dashboard(owner_client))["deploy"] is False
    make_deployments(owner, 1)
    response = dashboard(owner_client)
    assert steps(response)["deploy"] is True
    # Every step done: the panel steps aside.
    assert response.context["show_steps"] is False
    assert 'id="first-steps"' not in response.content.decode()
    assert counts(response) == {"Repositories": 1, "Builds": 2, "Images": 0, "Registries": 1, "Hosts": 0,
                                "Deployments": 2}


def test_the_dashboard_costs_the_same_queries_with_few_and_many_rows(owner_client, owner):
    dashboard(owner_client)
    add_rows(owner, 5, 0)
    with CaptureQueriesContext(connection) as few:
        dashboard(owner_client)
    add_rows(owner, 300, 5)
    with CaptureQueriesContext(connection) as many:
        response = dashboard(owner_client)
    assert len(few) == len(many)
    assert counts(response)["Builds"] == 305
