"""Registry accounts: the console's own and the user's, creating, changing and removing them, whether the console
may connect to an account's registry (destination checks), the client for it, and the login test. Secrets go
to the registry (requests' Basic auth) and to the engine (the SDK's auth_config) only."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from console import netpolicy
from console.audit.constants import Action
from console.audit.services import record
from console.crypto import DecryptionError
from console.errors import UpstreamError, check_name_free
from registry import kinds
from registry.client import RegistryClient, RegistryHTTPError
from registry.constants import USER_KINDS, RegistryKind
from registry.models import RegistryAccount
from registry.tokens import SigningMaterialMissing, issue_token, parse_scopes


class RegistryError(UpstreamError):
    """A registry act that cannot be done; the message is fit to show the user."""


def ensure_console_account(user) -> RegistryAccount:
    """The account of the console's own registry that every user has; made the first time it is needed."""
    account, _ = RegistryAccount.objects.get_or_create(
        owner=user,
        kind=RegistryKind.CONSOLE,
        defaults={"name": "console", "url": settings.REGISTRY_ADDRESS, "username": user.get_username()},
    )
    return account


def accounts_for(user):
    """The user's accounts, the console's own registry among them."""
    if not RegistryAccount.objects.filter(owner=user, kind=RegistryKind.CONSOLE).exists():
        try:
            with transaction.atomic():
                ensure_console_account(user)
        except IntegrityError:
            # The user already named an account "console": keep theirs, name the console's after the address.
            RegistryAccount.objects.get_or_create(
                owner=user,
                kind=RegistryKind.CONSOLE,
                defaults={"name": settings.REGISTRY_ADDRESS, "url": settings.REGISTRY_ADDRESS,
                          "username": user.get_username()},
            )
    # The account's username follows the user's (the registry's namespace is the user's name).
    RegistryAccount.objects.filter(owner=user, kind=RegistryKind.CONSOLE).exclude(
        username=user.get_username()
    ).update(username=user.get_username())
    return RegistryAccount.objects.for_user(user)


def _clean_account(owner, data: dict[str, Any], instance: RegistryAccount | None = None) -> dict[str, Any]:
    kind = data.get("kind", instance.kind if instance else "")
    if kind not in USER_KINDS:
        raise ValidationError({"kind": f"Choose one of: {', '.join(USER_KINDS)}."})
    name = (data.get("name", instance.name if instance else "") or "").strip()
    if not name:
        raise ValidationError({"name": "Give the account a name."})
    check_name_free(RegistryAccount.objects.for_user(owner), name, instance, noun="a registry account")
    url = data.get("url", instance.url if instance else "")
    username = data.get("username", instance.username if instance else "")
    url, username = kinds.normalise(kind, url, username)
    if kind == RegistryKind.GENERIC:
        _check_registry_url(owner, url)
    ca_certificate = (data.get("ca_certificate", instance.ca_certificate if instance else "") or "").strip()
    if kind != RegistryKind.GENERIC and "ca_certificate" not in data:
        # A kind changed away from generic drops the CA it no longer uses.
        ca_certificate = ""
    if ca_certificate:
        if kind != RegistryKind.GENERIC:
            raise ValidationError({"ca_certificate": "Only a generic registry takes a CA certificate."})
        try:
            x509.load_pem_x509_certificates(ca_certificate.encode())
        except ValueError:
            raise ValidationError({"ca_certificate": "This is not a PEM certificate."}) from None
    return {"name": name, "kind": kind, "url": url, "username": username, "ca_certificate": ca_certificate}


def _check_registry_url(owner, url: str) -> None:
    """A generic registry's URL must not reach the console's own machine (for users who are not staff).

    A name that does not resolve now is taken (it may be a registry not set up yet): every request to it is
    checked again before it is sent."""
    reason = netpolicy.refused_reason(url, user=owner, purpose=netpolicy.REGISTRY)
    if reason and not _unresolvable(url):
        raise ValidationError({"url": reason})


def _unresolvable(url: str) -> bool:
    host = (urlsplit(url).hostname or "").strip("[]")
    try:
        socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return True
    return False


@transaction.atomic
def create_account(owner, data: dict[str, Any]) -> RegistryAccount:
    """A new account from `name, kind, url, username, secret, ca_certificate`; ValidationError names bad fields."""
    fields = _clean_account(owner, data)
    account = RegistryAccount.objects.create(owner=owner, secret=data.get("secret") or "", **fields)
    record(owner, Action.REGISTRY_CREATED, target=account, detail={"kind": account.kind, "url": account.url})
    return account


@transaction.atomic
def update_account(account: RegistryAccount, data: dict[str, Any]) -> RegistryAccount:
    """Change some fields; an absent or empty `secret` keeps the stored one (it is never shown to edit)."""
    if account.is_console:
        raise ValidationError({"detail": "The console's registry account is managed by the console."})
    fields = _clean_account(account.owner, data, account)
    for name, value in fields.items():
        setattr(account, name, value)
    if data.get("secret"):
        account.secret = data["secret"]
    account.save()
    # Which fields were sent, never their values: the secret's is not for the log.
    record(account.owner, Action.REGISTRY_UPDATED, target=account,
           detail={"fields": sorted(name for name in data if name in {*fields, "secret"})})
    return account


def delete_account(account: RegistryAccount) -> None:
    if account.is_console:
        raise ValidationError({"detail": "The console's registry account is always present; it cannot be deleted."})
    with transaction.atomic():
        record(account.owner, Action.REGISTRY_DELETED, target=account, detail={"kind": account.kind})
        account.delete()


def _console_token_source(user):
    """For the console's own registry, the console signs the token itself instead of asking its realm."""

    def source(params: dict[str, str]) -> str:
        scopes = parse_scopes([params.get("scope", "")])
        return issue_token(user, params.get("service", settings.REGISTRY_SERVICE), scopes, internal=True)["token"]

    return source


def client_for(account: RegistryAccount) -> RegistryClient:
    """A client for the account's registry; every request it makes is checked against the network policy for the
    account's owner, except for the console's own registry (reached with a token the console signs)."""
    endpoint = account.endpoint
    if account.is_console:
        return RegistryClient(endpoint.api_url, token_source=_console_token_source(account.owner), trusted=True)
    return RegistryClient(
        endpoint.api_url, account.username, account.secret, account.ca_certificate, user=account.owner
    )


def destination_refusal(account: RegistryAccount) -> str:
    """Why the console will not connect to this account's registry for its owner ("" when it may).

    A name that does not resolve is no refusal here: nothing can connect to it, and the engine says so."""
    if account.is_console:
        return ""
    url = account.endpoint.api_url
    reason = netpolicy.refused_reason(url, user=account.owner, purpose=netpolicy.REGISTRY)
    return "" if reason and _unresolvable(url) else reason


def check_destination(account: RegistryAccount) -> None:
    """RegistryError unless the account's owner may have the console (or its engine) connect to the registry."""
    reason = destination_refusal(account)
    if reason:
        raise RegistryError(reason)


def check_login(account: RegistryAccount) -> tuple[bool, str]:
    """Log in the way `docker login` does (GET /v2/ answering the registry's challenge): (ok, what happened).

    What happened is one of the client's fixed sentences, never what the other side answered."""
    try:
        client_for(account).ping()
    except RegistryHTTPError as exc:
        return False, str(exc)
    except (DecryptionError, SigningMaterialMissing) as exc:
        return False, str(exc)
    return True, f"Logged in to {account.endpoint.api_url} as {account.username or 'anonymous'}."
