"""`GET /registry/token/`: the realm of the console's registry (the Docker registry token protocol)."""

from __future__ import annotations

import base64
import binascii
import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from console import throttle
from console.accounts.services import user_for_credentials
from registry.constants import READ_ONLY
from registry.models import GarbageCollection
from registry.tokens import (
    BUILD_CACHE_USER,
    SERVICE_PULL_USER,
    SigningMaterialMissing,
    issue_build_cache_token,
    issue_service_pull_token,
    issue_token,
    parse_scopes,
)

log = logging.getLogger(__name__)


def _basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    return (username, secret) if sep else ("", "")


def _unauthorized(message: str) -> JsonResponse:
    response = JsonResponse({"details": message, "errors": [{"code": "UNAUTHORIZED", "message": message}]},
                            status=401)
    response["WWW-Authenticate"] = f'Basic realm="{settings.REGISTRY_SERVICE}"'
    return response


@never_cache
@require_GET
def token(request: HttpRequest) -> JsonResponse:
    """Basic credentials (console password or personal access token) in, a JWT granting what is allowed out.
    No Authorization at all is the anonymous user: public pulls only. Wrong credentials are a 401."""
    user = None
    credentials = _basic_credentials(request)
    service = request.GET.get("service", "")
    if credentials is not None and credentials[0] == BUILD_CACHE_USER:
        # A build's CLI importing the farm's shared cache: the password is a signature checked here, not an
        # account's secret (no account has this name), so it needs no throttle and locks out nobody.
        return _signed(request, service, lambda scopes: issue_build_cache_token(credentials[1], service, scopes))
    if credentials is not None and credentials[0] == SERVICE_PULL_USER:
        # A swarm node pulling for a service (fleet): the password is a signature checked here, as above.
        return _signed(request, service, lambda scopes: issue_service_pull_token(credentials[1], service, scopes),
                       refused="The service's pull credential is not valid.")
    if credentials is not None or "Authorization" in request.headers:
        username, secret = credentials or ("", "")
        try:
            # Throttled like the login page; successes are not audited: engines ask for a token on every pull.
            user = throttle.authenticate(
                request, username, lambda: user_for_credentials(username, secret, request), via="registry",
                audit_success=False,
            ) if username and secret else None
        except throttle.LoginLocked as exc:
            response = JsonResponse({"details": exc.message,
                                     "errors": [{"code": "TOOMANYREQUESTS", "message": exc.message}]}, status=429)
            response["Retry-After"] = str(exc.retry_after)
            return response
        if user is None:
            # The username is the user's to see again, the secret never goes into a log.
            log.info("registry token refused for %r", username[:150])
            return _unauthorized("The username, password or access token is wrong.")
    return _signed(request, service, lambda scopes: issue_token(user, service, scopes))


def _signed(request: HttpRequest, service: str, issue,
            refused: str = "The build cache credential is not valid.") -> JsonResponse:
    """The answer `issue(scopes)` signs for the request's scopes (None: the credential is not good), or why not."""
    if service != settings.REGISTRY_SERVICE:
        return JsonResponse({"details": f"This console signs tokens for the service {settings.REGISTRY_SERVICE!r}."},
                            status=400)
    scopes = parse_scopes(request.GET.getlist("scope"))
    if any(scope.type == "repository" and scope.actions & {"push", "*"} for scope in scopes) \
            and GarbageCollection.objects.in_progress():
        # The registry serves read-only (registry/services/gc.py): the CLI prints `denied: <this message>`.
        return JsonResponse({"details": READ_ONLY, "errors": [{"code": "DENIED", "message": READ_ONLY}]},
                            status=403)
    try:
        answer = issue(scopes)
    except SigningMaterialMissing as exc:
        log.error("%s", exc)
        return JsonResponse({"details": str(exc)}, status=503)
    if answer is None:
        # The credential itself never goes into a log.
        log.info("registry token refused: %s", refused)
        return _unauthorized(refused)
    return JsonResponse(answer)
