"""Security headers on every response, and the client address as the console sees it.

Django's SecurityMiddleware already sends nosniff, the referrer policy and the opener policy when its settings say
so; this middleware makes sure every answer carries them (whatever the settings) and adds the Content-Security-Policy
that Django 5.2 does not have. The policy allows nothing inline and nothing from another origin: pages keep their
JavaScript in static/js/ and their styles in static/css/ (see README "Security").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def security_headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": getattr(settings, "CONTENT_SECURITY_POLICY", DEFAULT_CSP),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


class SecurityHeadersMiddleware:
    """Adds the console's security headers to every response that does not set its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.headers = security_headers()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        for name, value in self.headers.items():
            # A view that knows better (an API docs page that must open a popup, say) may set its own value.
            response.headers.setdefault(name, value)
        return response


def client_address(request: HttpRequest | None) -> str | None:
    """The address of whoever sent `request`: REMOTE_ADDR, or the entry our own proxies added to
    X-Forwarded-For when TRUSTED_PROXY_COUNT says how many of them stand in front of the console.

    Entries further left were written by the client and can be forged, so only the one the outermost trusted
    proxy appended is believed.
    """
    if request is None:
        return None
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < proxies:
        return remote
    return _valid_address(forwarded[-proxies]) or remote


def _valid_address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None
