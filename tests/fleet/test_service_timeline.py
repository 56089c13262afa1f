"""A swarm deployment's task timeline: the states the console saw each task in (remember_states), the tasks grouped
by release (service_timeline), the page and its fragment /deployments/<id>/service/ (escaped engine text, who may
see it, when the page stops asking). tests/fleet/test_swarm_timeline_browser.py watches it live in a real browser
against a real swarm."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from console.constants import JobStatus
from console.engine.swarm import _task_record
from fleet.models import Deployment, Host
from fleet.services.timeline import remember_states, service_timeline

NEW = "sha256:" + "1" * 64
OLD = "sha256:" + "0" * 64
SWARM = {"mode": "replicated", "replicas": 2, "placement": {"constraints": [], "max_replicas_per_node": None},
         "update": {"order": "start-first"}, "rollback": None}
HOSTILE = '<img src=x onerror="alert(1)">'


def task(task_id: str, state: str, since: str, *, digest: str = NEW, desired: str = "running", slot: int = 1,
         node: str = "10.203.0.2", error: str = "", updated: str = "") -> dict:
    return {"id": task_id, "node": node, "node_id": "n" * 25, "slot": slot, "state": state, "state_since": since,
            "desired_state": desired, "error": error, "message": state, "image_digest": digest,
            "updated": updated or since}


def service(*tasks: dict, update_state: str = "updating") -> dict:
    return {"id": "s" * 25, "replicas": 2, "running": sum(t["state"] == "running" for t in tasks),
            "update_state": update_state, "update_message": "update in progress",
            "update_started": "2026-12-02T16:00:00.5Z", "tasks": list(tasks)}


def test_the_engines_task_says_since_when_it_is_in_its_state():
    record = _task_record({"ID": "t1", "NodeID": "n1", "Slot": 2, "DesiredState": "running",
                           "UpdatedAt": "2026-12-02T16:00:03.1Z",
                           "Status": {"State": "running", "Timestamp": "2026-12-02T16:00:02.123456789Z",
                                      "Message": "started"},
                           "Spec": {"ContainerSpec": {"Image": f"r:5000/hello:1@{NEW}"}}}, {"n1": "10.203.0.2"})
    assert record["state_since"] == "2026-12-02T16:00:02.123456789Z"
    assert (record["node"], record["state"], record["image_digest"]) == ("10.203.0.2", "running", NEW)


def test_it_remembers_the_states_each_task_was_seen_in():
    first = remember_states(None, service(task("t1", "preparing", "2026-12-02T16:00:01Z")))
    assert first["tasks"][0]["history"] == [{"state": "preparing", "since": "2026-12-02T16:00:01Z"}]
    same = remember_states(first, service(task("t1", "preparing", "2026-12-02T16:00:01Z")))
    assert same["tasks"][0]["history"] == first["tasks"][0]["history"]
    later = remember_states(same, service(task("t1", "running", "2026-12-02T16:00:03Z"),
                                          task("t2", "new", "2026-12-02T16:00:03Z", slot=2)))
    assert [step["state"] for step in later["tasks"][0]["history"]] == ["preparing", "running"]
    assert later["tasks"][1]["history"] == [{"state": "new", "since": "2026-12-02T16:00:03Z"}]
    assert later["read_at"] >= first["read_at"] and later["read_at"].endswith("+00:00")
    # A task Swarm no longer lists is gone from the record: it stays bounded.
    assert [t["id"] for t in remember_states(later, service(task("t2", "running", "x")))["tasks"]] == ["t2"]


@pytest.fixture
def rolling(owner):
    host = Host.objects.create(owner=owner, name="swarm", url="tcp://127.0.0.1:2371",
                               swarm={"id": "c" * 25, "managers": 1, "nodes": []})
    deployment = Deployment.objects.create(owner=owner, name="hello", image="r:5000/hello:2", swarm=SWARM,
                                           image_digest=f"r:5000/hello@{NEW}", status=JobStatus.RUNNING)
    state = remember_states(None, service(
        task("old1", "running", "2026-12-02T15:50:00Z", digest=OLD, desired="shutdown", slot=1,
             updated="2026-12-02T15:50:00Z"),
        task("old2", "running", "2026-12-02T15:50:00Z", digest=OLD, slot=2, node=HOSTILE),
        task("new1", "preparing", "2026-12-02T16:00:01Z", slot=1),
    ))
    state = remember_states(state, {**state, "tasks": [
        *state["tasks"][:2], task("new1", "failed", "2026-12-02T16:00:02.75Z", slot=1, error=HOSTILE)]})
    deployment.targets.create(host=host, host_name="swarm", status=JobStatus.RUNNING, service=state)
    return deployment


def test_it_groups_the_tasks_by_release_this_one_first(rolling):
    (timeline,) = service_timeline(rolling)
    assert timeline["host_name"] == "swarm" and timeline["service"]["update_state"] == "updating"
    assert timeline["service"]["update_started"] == datetime(2026, 12, 2, 16, 0, 0, 500000, tzinfo=UTC)
    new, old = timeline["groups"]
    assert (new["kind"], new["label"], new["digest"], new["short_digest"]) == (
        "new", "This release", NEW, "sha256:111111111111")
    assert (old["kind"], old["label"], old["running"], old["stopping"]) == ("old", "Earlier release", 1, 1)
    (failed,) = new["tasks"]
    assert (failed["state"], failed["since"]) == ("failed", datetime(2026, 12, 2, 16, 0, 2, 750000, tzinfo=UTC))
    assert [step["state"] for step in failed["earlier"]] == ["preparing"]
    assert [row["id"] for row in old["tasks"]] == ["old1", "old2"]


def test_plain_deployments_have_no_timeline(owner):
    assert service_timeline(Deployment.objects.create(owner=owner, name="hello", image="hello:1")) == []


def test_the_fragment_escapes_the_engines_text_and_says_whether_it_is_final(owner_client, rolling):
    answer = owner_client.get(f"/deployments/{rolling.pk}/service/")
    html = answer.content.decode()
    assert answer.status_code == 200
    assert HOSTILE not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert 'data-final="false"' in html and "<script" not in html
    assert 'data-release="new"' in html and 'data-release="old"' in html
    assert "This release <code" in html and "0 of 1 task running" in html
    assert "1 of 2 tasks running, 1 still running while Swarm stops it" in html
    assert 'datetime="2026-12-02T16:00:02.750000+00:00">since 16:00:02</time>' in html
    assert "preparing 16:00:01" in html and "Swarm's update: " in html
    rolling.status = JobStatus.FAILED
    rolling.save()
    assert 'data-final="true"' in owner_client.get(f"/deployments/{rolling.pk}/service/").content.decode()


def test_the_page_draws_the_timeline_and_polls_it_while_it_runs(owner_client, rolling, owner):
    page = owner_client.get(f"/deployments/{rolling.pk}/").content.decode()
    assert 'id="service-timeline"' in page and f'data-url="/deployments/{rolling.pk}/service/"' in page
    assert "js/fleet-service-timeline.js" in page and "Service on swarm" in page and HOSTILE not in page
    assert 'role="status"' in page
    plain = Deployment.objects.create(owner=owner, name="other", image="hello:1")
    page = owner_client.get(f"/deployments/{plain.pk}/").content.decode()
    assert 'id="service-timeline"' not in page and "fleet-service-timeline.js" not in page


def test_a_swarm_deployment_before_its_first_reading(owner_client, owner, rolling):
    rolling.targets.update(service=None)
    html = owner_client.get(f"/deployments/{rolling.pk}/service/").content.decode()
    assert "Swarm has not been asked yet" in html and "<table" not in html


def test_outsiders_and_wrong_methods(client, outsider, owner_client, rolling):
    assert owner_client.post(f"/deployments/{rolling.pk}/service/").status_code == 405
    client.force_login(outsider)
    assert client.get(f"/deployments/{rolling.pk}/service/").status_code == 404
    client.logout()
    assert client.get(f"/deployments/{rolling.pk}/service/").status_code == 302


def test_the_api_shows_when_each_task_entered_its_state_and_its_history(owner_api, rolling):
    (target,) = owner_api.get(f"/api/v1/deployments/{rolling.pk}/").json()["targets"]
    tasks = {t["id"]: t for t in target["service"]["tasks"]}
    assert tasks["new1"]["state_since"] == "2026-12-02T16:00:02.75Z"
    assert tasks["new1"]["history"] == [{"state": "preparing", "since": "2026-12-02T16:00:01Z"},
                                        {"state": "failed", "since": "2026-12-02T16:00:02.75Z"}]
    assert {"node", "state", "desired_state", "error", "image_digest"} <= set(tasks["old1"])
