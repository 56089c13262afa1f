"""/audit/: the user's own events (staff see all), filtered by action, paginated."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.urls import reverse

from console.audit.constants import Action
from console.audit.services import record
from console.audit.views import PAGE_SIZE


def test_it_lists_the_users_own_events_newest_first(owner_client, owner, outsider):
    record(owner, Action.SIGNIN, target=owner, detail={"via": "browser"})
    record(owner, Action.TOKEN_CREATED, target="ci")
    record(outsider, Action.REGISTRY_CREATED, target="mallory's hub")
    response = owner_client.get(reverse("audit:event-list"))
    assert response.status_code == 200
    assert [event.action for event in response.context["page"]] == ["token_created", "signin"]
    html = response.content.decode()
    assert "Access token created" in html and "alice signed in (in the browser)" in html
    assert "mallory" not in html


def test_an_outsider_sees_none_of_the_owners_events(client, owner, outsider):
    record(owner, Action.SIGNIN, target=owner)
    client.force_login(outsider)
    response = client.get(reverse("audit:event-list"))
    assert response.status_code == 200
    assert list(response.context["page"]) == []
    assert "No events" in response.content.decode()


def test_staff_see_every_accounts_events(client, owner, outsider):
    record(owner, Action.SIGNIN)
    record(outsider, Action.SIGNIN)
    staff = get_user_model().objects.create_user("root", "root@example.com", "x", is_staff=True)
    client.force_login(staff)
    response = client.get(reverse("audit:event-list"))
    assert {event.actor_name for event in response.context["page"]} == {"alice", "mallory"}


def test_it_filters_by_action_and_an_unknown_one_is_a_form_error(owner_client, owner):
    record(owner, Action.SIGNIN)
    record(owner, Action.SIGNOUT)
    filtered = owner_client.get(reverse("audit:event-list"), {"action": "signout"})
    assert [event.action for event in filtered.context["page"]] == ["signout"]
    # As the API answers it: a 400 naming the field, and no rows that would look filtered but are not.
    unknown = owner_client.get(reverse("audit:event-list"), {"action": "nonsense"})
    assert unknown.status_code == 400
    assert len(unknown.context["page"]) == 0
    assert unknown.context["form"].errors["action"]
    assert "Select a valid choice" in unknown.content.decode()


def test_it_pages_through_many_events(owner_client, owner):
    for _ in range(PAGE_SIZE + 3):
        record(owner, Action.SIGNIN)
    first = owner_client.get(reverse("audit:event-list"))
    assert len(first.context["page"]) == PAGE_SIZE
    assert "page=2" in first.content.decode()
    second = owner_client.get(reverse("audit:event-list"), {"page": 2})
    assert len(second.context["page"]) == 3


def test_it_asks_anonymous_visitors_to_log_in(client, db):
    response = client.get(reverse("audit:event-list"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


def test_it_refuses_a_post(owner_client):
    assert owner_client.post(reverse("audit:event-list")).status_code == 405


def test_the_navigation_links_to_it(owner_client):
    assert f'href="{reverse("audit:event-list")}"' in owner_client.get(reverse("accounts:token-list")).content.decode()


def test_the_pager_keeps_the_filters_and_the_search_finds_objects(owner_client, owner):
    for number in range(PAGE_SIZE + 2):
        record(owner, Action.TOKEN_CREATED, target=f"ci-{number}")
    record(owner, Action.SIGNIN)
    first = owner_client.get(reverse("audit:event-list"), {"action": "token_created", "q": "ci-"})
    body = first.content.decode()
    assert f"{PAGE_SIZE + 2} events match the filters" in body
    assert 'href="?action=token_created&amp;q=ci-&amp;page=2"' in body
    one = owner_client.get(reverse("audit:event-list"), {"q": "CI-7"})
    assert [event.target_label for event in one.context["page"]] == ["ci-7"]
    none = owner_client.get(reverse("audit:event-list"), {"q": "nothing-like-it"}).content.decode()
    assert "No events match these filters" in none
