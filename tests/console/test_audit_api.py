"""GET /api/v1/audit/: the same rules as the page, in pages like every list (and still with limit/offset, as
before pages came) and a 400 for a bad filter."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from console.audit.constants import Action
from console.audit.services import record

URL = "/api/v1/audit/"


def test_it_lists_the_callers_events_newest_first_in_pages(owner_api, owner, outsider):
    for number in range(5):
        record(owner, Action.SOURCE_ADDED, target=f"source {number}", detail={"repository": "hello"})
    record(outsider, Action.SIGNIN)
    response = owner_api.get(URL, {"limit": 2, "offset": 1})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 5
    assert [event["target"]["label"] for event in body["results"]] == ["source 3", "source 2"]
    assert "offset=3" in body["next"] and body["previous"]
    event = body["results"][0]
    assert set(event) == {"id", "created", "actor", "action", "summary", "target", "detail", "address"}
    assert event["actor"] == "alice" and event["action"] == "source_added"
    assert event["detail"] == {"repository": "hello"}


def test_it_pages_like_every_other_list(owner_api, owner):
    for number in range(5):
        record(owner, Action.SOURCE_ADDED, target=f"source {number}")
    body = owner_api.get(URL, {"page": 2, "page_size": 2}).json()
    assert body["count"] == 5
    assert [event["target"]["label"] for event in body["results"]] == ["source 2", "source 1"]
    assert "page=3" in body["next"] and "page_size=2" in body["next"] and body["previous"]


def test_it_filters_by_action(owner_api, owner):
    record(owner, Action.SIGNIN)
    record(owner, Action.SIGNOUT)
    response = owner_api.get(URL, {"action": "signin"})
    assert [event["action"] for event in response.json()["results"]] == ["signin"]


def test_an_unknown_action_is_a_400_with_a_message(owner_api):
    response = owner_api.get(URL, {"action": "nonsense"})
    assert response.status_code == 400
    assert "nonsense is not one of the available choices" in response.json()["action"][0]


def test_an_outsider_sees_none_of_the_owners_events(outsider, owner):
    record(owner, Action.SIGNIN)
    client = APIClient()
    client.force_authenticate(outsider)
    assert client.get(URL).json()["results"] == []


def test_staff_see_everyone(owner, outsider):
    record(owner, Action.SIGNIN)
    record(outsider, Action.SIGNIN)
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user("root", "r@example.com", "x", is_staff=True))
    assert client.get(URL).json()["count"] == 2


def test_anonymous_callers_get_401(api_client, db):
    assert api_client.get(URL).status_code == 401


def test_it_is_read_only(owner_api):
    assert owner_api.post(URL, {"action": "signin"}, format="json").status_code == 405
    assert owner_api.delete(URL).status_code == 405


def test_the_schema_describes_it(api_client, db):
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"][URL]["get"]
    assert {parameter["name"] for parameter in operation["parameters"]} >= {"action", "limit", "offset", "page",
                                                                          "page_size"}
    assert "400" in operation["responses"]
