"""console/events/delivery.py: the address is checked at every attempt (DNS rebinding), redirects are failures."""

from __future__ import annotations

import ipaddress
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from console import netpolicy
from console.events.delivery import post


@pytest.fixture
def redirecting_server():
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            hits.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, hits
    server.shutdown()
    server.server_close()


def test_a_name_that_now_resolves_to_loopback_is_refused(monkeypatch, settings, django_user_model):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    user = django_user_model(username="u", is_staff=False)
    # Public when the webhook was saved, loopback when it is sent.
    monkeypatch.setattr(netpolicy, "_resolve", lambda host, port=None: [ipaddress.ip_address("127.0.0.1")])
    answer = post("http://hooks.example.com/in", b"{}", {}, user=user, timeout=2)
    assert answer.status is None and not answer.ok
    assert "loopback" in answer.error


def test_a_redirect_is_not_followed(redirecting_server, django_user_model):
    server, hits = redirecting_server
    staff = django_user_model(username="root", is_staff=True)
    answer = post(f"http://127.0.0.1:{server.server_address[1]}/in?x=1", b"{}", {}, user=staff, timeout=5)
    assert answer.status == 302 and not answer.ok
    assert "redirect" in answer.error
    assert hits == ["/in?x=1"]
