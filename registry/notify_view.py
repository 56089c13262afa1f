"""`POST /registry/notifications/`: where the console's registry sends its notifications (registry/notifications.py).

A REST framework view with no session authentication: the caller is the registry, proven by the bearer secret
config.yml holds, not a browser with cookies, so there is no cross-site request to forge (DRF checks CSRF only
for session-authenticated requests, and this view accepts none)."""

from __future__ import annotations

import json
import logging

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from registry.notifications import authorised, record_envelope

log = logging.getLogger(__name__)

MAX_BODY = 4 * 1024 * 1024


@extend_schema(exclude=True)
@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
def notifications(request) -> Response:
    """Only the registry, which sends the bearer token config.yml holds, may post; each event recorded once."""
    if not authorised(request.headers.get("Authorization", "")):
        return Response({"detail": "Only the console's registry may send notifications."}, status=401)
    length = request.headers.get("Content-Length") or "0"
    if not length.isdigit() or int(length) > MAX_BODY:
        return Response({"detail": "The envelope is too large."}, status=413)
    try:
        # The raw body: Distribution's media type (application/vnd.docker.distribution.events.v1+json) is JSON.
        envelope = json.loads(request._request.body or b"{}")
    except ValueError:
        # Distribution would send it again forever: skipped, and said so in the operator's log.
        log.warning("The registry sent a notification that is not JSON; skipped")
        return Response({"recorded": 0})
    return Response({"recorded": record_envelope(envelope)})
