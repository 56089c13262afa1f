"""The audit log in words (console/audit/words.py): sentences instead of model labels and Python values, links to
objects that still exist and that the viewer may see, resolved in bulk; the API's `summary` says the same."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from builds.models import Build
from console.audit.constants import REASON_LOCKED, Action
from console.audit.models import AuditEvent
from console.audit.services import record
from console.audit.words import describe, describe_one, summary
from fleet.models import Deployment
from registry.constants import RegistryKind
from registry.models import Push
from registry.services.accounts import accounts_for
from tests.console.test_list_pages_queries import make_builds, make_repository, make_source

pytestmark = pytest.mark.django_db


def page_html(client) -> str:
    response = client.get(reverse("audit:event-list"))
    assert response.status_code == 200
    return response.content.decode()


def test_a_build_is_a_sentence_linked_to_it_with_its_status_now(owner_client, owner):
    source = make_source(make_repository(owner, "shop"))
    build = make_builds(owner, 1, source, name="shop", status="queued")[0]
    record(owner, Action.BUILD_STARTED, target=build, detail={"repository": "shop", "tags": ["shop:0"]})
    Build.objects.filter(pk=build.pk).update(status="succeeded")
    html = page_html(owner_client)
    url = reverse("builds:build-detail", args=[build.pk])
    assert f'alice started <a href="{url}">build #{build.pk} of shop</a> (shop:0)' in html
    # Its status now, not the "(queued)" frozen into the stored label.
    assert "(queued)" not in html and '<span class="badge succeeded" title="Its status now">succeeded</span>' in html
    assert "builds.build" not in html


def test_a_deployment_speaks_without_python_values(owner_client, owner):
    deployment = Deployment.objects.create(owner=owner, name="web", image="shop:1", status="succeeded")
    record(owner, Action.DEPLOY_STARTED, target=deployment,
           detail={"name": "web", "image": "shop:1", "image_id": "sha256:abc", "hosts": ["h1", "h2"],
                   "selector": "", "registry": None})
    html = page_html(owner_client)
    url = reverse("fleet:deployment-detail", args=[deployment.pk])
    assert f'alice deployed <a href="{url}">web #{deployment.number}</a> with shop:1 on h1, h2' in html
    assert "registry=None" not in html and "None" not in html and "fleet.deployment" not in html
    assert "image id:</span> sha256:abc" in html


def test_a_deleted_object_is_named_without_a_link(owner_client, owner):
    deployment = Deployment.objects.create(owner=owner, name="web", image="shop:1")
    record(owner, Action.DEPLOY_STARTED, target=deployment, detail={"name": "web"})
    pk, number = deployment.pk, deployment.number
    deployment.delete()
    html = page_html(owner_client)
    assert f"alice deployed web #{number}" in html
    assert reverse("fleet:deployment-detail", args=[pk]) not in html


def test_staff_see_others_events_but_no_link_to_what_they_may_not_open(client, owner, staff):
    repository = make_repository(owner, "shop")
    record(owner, Action.REPOSITORY_CREATED, target=repository)
    client.force_login(staff)
    html = page_html(client)
    assert "alice created the repository shop" in html
    assert reverse("builds:repository-detail", args=[repository.pk]) not in html


def test_words_for_sign_ins_pushes_and_rollbacks(owner):
    account = accounts_for(owner).get(kind=RegistryKind.CONSOLE)
    push = Push.objects.create(owner=owner, registry=account, image="sha256:1", repository="alice/shop", tag="1")
    record(owner, Action.PUSH_STARTED, target=push,
           detail={"image": "shop:1", "registry": account.name, "repository": "alice/shop", "tag": "1"})
    record(owner, Action.SIGNIN_FAILED, target="alice", detail={"reason": REASON_LOCKED})
    release = Deployment.objects.create(owner=owner, name="web", image="shop:0")
    record(owner, Action.ROLLBACK, target=Deployment.objects.create(owner=owner, name="web", image="shop:0"),
           detail={"name": "web", "image": "shop:0", "hosts": ["h1"], "release": release.pk})
    rollback, failed, pushed = (summary(event) for event in AuditEvent.objects.order_by("-id"))
    assert pushed == f"alice started push #{push.number} of shop:1 to alice/shop:1 on {account.name}"
    assert failed == "a sign-in as alice failed (locked after too many tries)"
    # An event from before per-user numbers kept no release_number: the release goes by its id.
    assert rollback.startswith("alice rolled back web #") and f"to release #{release.pk} with shop:0 on h1" in rollback


def test_objects_go_by_their_owners_number_not_their_id(owner, outsider):
    # The outsider's deployments take the first ids: the owner's first deployment has a larger id, and number 1.
    for _ in range(3):
        Deployment.objects.create(owner=outsider, name="web", image="shop:0")
    release = Deployment.objects.create(owner=owner, name="web", image="shop:0")
    current = Deployment.objects.create(owner=owner, name="web", image="shop:1")
    assert (release.number, current.number) == (1, 2) and release.pk > 3
    record(owner, Action.DEPLOY_STARTED, target=current, detail={"name": "web", "image": "shop:1",
                                                                 "redeploy_of": release.pk,
                                                                 "redeploy_of_number": release.number})
    rollback = Deployment.objects.create(owner=owner, name="web", image="shop:0", rollback_of=release)
    record(owner, Action.ROLLBACK, target=rollback, detail={"name": "web", "image": "shop:0", "release": release.pk,
                                                            "release_number": release.number})
    rolled_back, deployed = AuditEvent.objects.order_by("-id")
    assert deployed.detail["number"] == 2 and rolled_back.detail["number"] == 3
    assert describe_one(deployed).summary == "alice deployed web #2 with shop:1"
    # The numbers are said once, in words, not again as extra detail; the redeploy's earlier one by its number.
    assert describe_one(deployed).extra == [("redeploy of", "#1")]
    assert describe_one(rolled_back).summary == "alice rolled back web #3 to release #1 with shop:0"
    assert describe_one(rolled_back).extra == []


def test_a_build_goes_by_its_number_and_an_event_from_before_numbers_by_its_id(owner, outsider):
    source = make_source(make_repository(owner, "shop"))
    other = make_source(make_repository(outsider, "shop"))
    Build.objects.create(owner=outsider, repository=other.repository, source=other)
    build = Build.objects.create(owner=owner, repository=source.repository, source=source)
    record(owner, Action.BUILD_STARTED, target=build, detail={"repository": "shop"})
    # Written before numbers: the detail has none, the label has the id.
    AuditEvent.objects.create(actor=owner, actor_name="alice", action=Action.BUILD_CANCELLED,
                              target_type="builds.build", target_id=str(build.pk),
                              target_label=f"build #{build.pk} of shop (queued)")
    old, new = AuditEvent.objects.order_by("-id")
    assert build.number == 1 and build.pk > 1
    assert summary(new) == "alice started build #1 of shop"
    assert new.target_label == "build #1 of shop (queued)"
    assert summary(old) == f"alice cancelled build #{build.pk}"


def test_links_cost_one_query_per_kind_of_object_not_per_event(owner):
    source = make_source(make_repository(owner, "shop"))
    for build in make_builds(owner, 3, source, name="shop"):
        record(owner, Action.BUILD_STARTED, target=build, detail={"repository": "shop"})
    for n in range(3):
        record(owner, Action.DEPLOY_STARTED,
               target=Deployment.objects.create(owner=owner, name=f"web{n}", image="x"), detail={"name": f"web{n}"})
    record(owner, Action.SIGNIN, target=owner)
    events = list(AuditEvent.objects.all())
    with CaptureQueriesContext(connection) as few:
        described = describe(events, owner)
    assert len(few) == 2  # builds, deployments; the user's own sign-in has no page
    assert sum(1 for item in described if item.url) == 6
    for build in make_builds(owner, 20, source, name="shop", start=3):
        record(owner, Action.BUILD_STARTED, target=build, detail={"repository": "shop"})
    events = list(AuditEvent.objects.all())
    with CaptureQueriesContext(connection) as many:
        described = describe(events, owner)
    assert len(many) == 2 and sum(1 for item in described if item.url) == 26


def test_the_api_adds_the_summary(owner_api, owner):
    repository = make_repository(owner, "shop")
    record(owner, Action.REPOSITORY_CREATED, target=repository)
    event = owner_api.get("/api/v1/audit/").json()["results"][0]
    assert event["summary"] == "alice created the repository shop"
    # The shape it had stays.
    assert event["target"] == {"type": "builds.repository", "id": str(repository.pk), "label": "shop"}
