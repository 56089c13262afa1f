"""CSRF on every form: each POST form in the templates carries the token, no view is exempt, and a post without
the token is refused."""

from __future__ import annotations

import re
from pathlib import Path

from django.test import Client
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]
FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S | re.I)


def post_forms() -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        for attributes, body in FORM.findall(path.read_text()):
            if re.search(r"method\s*=\s*[\"']?post", attributes, re.I):
                found.append((str(path.relative_to(ROOT)), body))
    return found


def test_every_post_form_in_the_templates_carries_the_csrf_token():
    forms = post_forms()
    assert len(forms) >= 5
    assert [name for name, body in forms if "{% csrf_token %}" not in body] == []


def test_no_view_is_exempt_from_csrf():
    sources = [path for folder in ("console", "builds", "registry", "fleet") for path in (ROOT / folder).rglob("*.py")]
    assert [str(path) for path in sources if "csrf_exempt" in path.read_text()] == []


def test_a_form_posted_without_the_token_is_refused(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(reverse("accounts:token-list"), {"name": "x"}).status_code == 403
    assert client.post(reverse("accounts:logout")).status_code == 403
    anonymous = Client(enforce_csrf_checks=True)
    assert anonymous.post(reverse("accounts:login"), {"username": "alice", "password": "x"}).status_code == 403
