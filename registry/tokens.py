"""The Docker registry token protocol, with the console as the authorization server of its own registry.

The registry (CNCF Distribution, `auth: token`) sends clients to `GET /registry/token/?service=&scope=`; the
console checks their Basic credentials and answers a JWT, signed by the key whose certificate the registry
trusts (`rootcertbundle`), that lists only what is granted: pull and push under the user's own namespace
`<username>/`, pull on repositories made public, nothing else.

The build farm's shared cache lives in the namespace `console-cache/` (builds/sharedcache.py), which no account
owns: the console signs its own tokens for it (`build_cache_token`), and the Docker CLI that imports a cache
gets, through the token endpoint, pull of one cache repository with a signed, short-lived credential
(`build_cache_credential`) that names it.

A swarm service pulling from the console's registry carries a signed, long-lived credential of the same kind
(`service_pull_credential`): pull of one repository of its owner's, checked again at each exchange, so that a
task Swarm starts long after the service's last update still pulls, and nothing else can be done with it.
"""

from __future__ import annotations

import base64
import datetime
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.core import signing

from console.accounts.usernames import BUILD_CACHE_NAMESPACE, SERVICE_PULL_NAME
from registry.constants import OWNER_ACTIONS, PUBLIC_ACTIONS

KEY_FILE = "token.key"
CERT_FILE = "token.crt"


@dataclass(frozen=True)
class Scope:
    """One `type:name:actions` item a client asks for, such as `repository:alice/app:pull,push`."""

    type: str
    name: str
    actions: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        # Names may hold a registry port (`host:5000/app`), so the type is before the first colon and the
        # actions after the last.
        type_, _, rest = text.partition(":")
        name, _, actions = rest.rpartition(":")
        if not type_ or not name:
            return None
        return cls(type_, name, frozenset(a for a in actions.split(",") if a))

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


def parse_scopes(values: list[str]) -> list[Scope]:
    """Scopes from the repeated `scope` query parameter; each may also hold several separated by spaces."""
    scopes = []
    for value in values:
        for item in value.split():
            scope = Scope.parse(item)
            if scope is not None:
                scopes.append(scope)
    return scopes


def namespace_of(user) -> str:
    """The user's namespace in the console's registry: repository names are lowercase."""
    return user.get_username().lower()


def owner_of_namespace(namespace: str):
    """The account whose namespace this is (the one `namespace_of` names so), or None."""
    from django.contrib.auth import get_user_model

    if not namespace or namespace != namespace.lower():
        return None
    for user in get_user_model()._default_manager.filter(username__iexact=namespace)[:10]:
        if namespace_of(user) == namespace:
            return user
    return None


def granted_actions(user, scope: Scope, *, internal: bool = False) -> frozenset[str]:
    """What `user` (None: anonymous) may do of what `scope` asks. `internal` is the console reading its own
    registry for the user (listing the catalog, which it then filters to what the user may see)."""
    from registry.models import PublicRepository

    if scope.type == "registry" and scope.name == "catalog":
        return scope.actions & {"*"} if internal and user is not None else frozenset()
    if scope.type != "repository" or is_build_cache(scope.name):
        # The build cache is no account's, even one whose name predates the reservation.
        return frozenset()
    allowed: frozenset[str] = frozenset()
    if user is not None and scope.name.startswith(f"{namespace_of(user)}/"):
        allowed = OWNER_ACTIONS
    elif PublicRepository.objects.filter(name=scope.name).exists():
        allowed = PUBLIC_ACTIONS
    return scope.actions & allowed


def issue_token(user, service: str, scopes: list[Scope], *, internal: bool = False) -> dict:
    """The token endpoint's answer: a signed JWT granting what `user` may do of `scopes`."""
    access = []
    for scope in scopes:
        actions = granted_actions(user, scope, internal=internal)
        if actions:
            access.append({"type": scope.type, "name": scope.name, "actions": sorted(actions)})
    return sign_token(user.get_username() if user is not None else "", service, access)


def sign_token(subject: str, service: str, access: list[dict]) -> dict:
    """The token endpoint's answer for exactly `access` ([{type, name, actions}]), signed for `service`."""
    key, certificate = load_signing_material()
    now = int(time.time())
    ttl = settings.REGISTRY_TOKEN_TTL
    claims = {
        "iss": settings.REGISTRY_ISSUER,
        "sub": subject,
        "aud": service,
        "exp": now + ttl,
        # A little slack for clocks that differ between the console and the registry.
        "nbf": now - 10,
        "iat": now,
        "jti": secrets.token_urlsafe(16),
        "access": access,
    }
    der = certificate.public_bytes(serialization.Encoding.DER)
    token = jwt.encode(claims, key, algorithm="RS256", headers={"x5c": [base64.b64encode(der).decode()]})
    issued = datetime.datetime.fromtimestamp(now, tz=datetime.UTC).isoformat()
    return {"token": token, "access_token": token, "expires_in": ttl, "issued_at": issued}


# -- the build farm's shared cache ----------------------------------------------------------------------------

BUILD_CACHE_USER = BUILD_CACHE_NAMESPACE
_BUILD_CACHE_SALT = "registry.build-cache"
# The CLI asks for its token when the build starts importing the cache, seconds after it got the credential.
BUILD_CACHE_CREDENTIAL_SECONDS = 600


def is_build_cache(name: str) -> bool:
    return name.startswith(f"{BUILD_CACHE_NAMESPACE}/")


def build_cache_token(repository: str, actions: set[str]) -> str:
    """A token the console signs for itself: `actions` on one repository of the cache namespace."""
    if not is_build_cache(repository):
        raise ValueError(f"{repository!r} is not in the build cache's namespace")
    access = [{"type": "repository", "name": repository, "actions": sorted(actions)}]
    return sign_token(BUILD_CACHE_USER, settings.REGISTRY_SERVICE, access)["token"]


def build_cache_credential(repository: str) -> tuple[str, str]:
    """(username, password) with which the token endpoint grants pull of `repository` (a cache repository) and
    nothing else, for BUILD_CACHE_CREDENTIAL_SECONDS: what a build's CLI reads from its private config.json."""
    if not is_build_cache(repository):
        raise ValueError(f"{repository!r} is not in the build cache's namespace")
    return BUILD_CACHE_USER, signing.dumps(repository, salt=_BUILD_CACHE_SALT)


def build_cache_repository(password: str) -> str | None:
    """The cache repository a build cache credential names; None when it is forged or expired."""
    try:
        repository = signing.loads(password, salt=_BUILD_CACHE_SALT, max_age=BUILD_CACHE_CREDENTIAL_SECONDS)
    except signing.BadSignature:
        return None
    return repository if isinstance(repository, str) and is_build_cache(repository) else None


def issue_build_cache_token(password: str, service: str, scopes: list[Scope]) -> dict | None:
    """The token endpoint's answer to a build cache credential: pull of the repository it names, where asked;
    None when the credential is not good."""
    repository = build_cache_repository(password)
    if repository is None:
        return None
    access = [{"type": "repository", "name": repository, "actions": ["pull"]}
              for scope in scopes if scope.type == "repository" and scope.name == repository
              and "pull" in scope.actions][:1]
    return sign_token(BUILD_CACHE_USER, service, access)


# -- pull credentials of swarm services ---------------------------------------------------------------------

# The username of a swarm service's pull credential (service_pull_credential): reserved, no account has it.
SERVICE_PULL_USER = SERVICE_PULL_NAME
_SERVICE_PULL_SALT = "registry.service-pull"
# How long a service's pull credential stays good (seconds): Swarm hands the credential a service carries to every
# task it starts, a task rescheduled on another node months after the last update included. Each update of the
# service (a deployment, a scale, a rollback) sends a fresh one.
SERVICE_PULL_CREDENTIAL_SECONDS = 180 * 24 * 3600


def service_pull_credential(account_id: int, owner_id: int, repository: str) -> tuple[str, str]:
    """(username, password) that a swarm service carries to pull `repository` of the console's registry: the
    password is a signature (SECRET_KEY) of the registry account, its owner and the repository, which the token
    endpoint turns into pull of that repository and nothing else, for SERVICE_PULL_CREDENTIAL_SECONDS, while the
    account exists and its owner may pull the repository (issue_service_pull_token)."""
    return SERVICE_PULL_USER, signing.dumps({"a": account_id, "u": owner_id, "r": repository},
                                            salt=_SERVICE_PULL_SALT, compress=True)


def issue_service_pull_token(password: str, service: str, scopes: list[Scope]) -> dict | None:
    """The token endpoint's answer to a service's pull credential: pull of the repository it names, where asked
    and where its account's owner may still pull it (their namespace, or a public repository); None when the
    credential is forged or expired, its account is gone or no longer the console's, or its owner is inactive."""
    from registry.constants import RegistryKind
    from registry.models import RegistryAccount

    try:
        claim = signing.loads(password, salt=_SERVICE_PULL_SALT, max_age=SERVICE_PULL_CREDENTIAL_SECONDS)
    except signing.BadSignature:
        return None
    if not isinstance(claim, dict) or not all(isinstance(claim.get(key), kind) for key, kind in
                                              (("a", int), ("u", int), ("r", str))):
        return None
    account = RegistryAccount.objects.select_related("owner").filter(
        pk=claim["a"], owner_id=claim["u"], kind=RegistryKind.CONSOLE).first()
    if account is None or not account.owner.is_active:
        return None
    repository = claim["r"]
    asked = any(scope.type == "repository" and scope.name == repository and "pull" in scope.actions
                for scope in scopes)
    pull = Scope("repository", repository, frozenset({"pull"}))
    access = ([{"type": "repository", "name": repository, "actions": ["pull"]}]
              if asked and "pull" in granted_actions(account.owner, pull) else [])
    return sign_token(account.owner.get_username(), service, access)


def load_signing_material(directory: Path | None = None):
    directory = Path(directory or settings.REGISTRY_DIR)
    try:
        key = serialization.load_pem_private_key((directory / KEY_FILE).read_bytes(), password=None)
        certificate = x509.load_pem_x509_certificate((directory / CERT_FILE).read_bytes())
    except FileNotFoundError:
        raise SigningMaterialMissing(
            f"The registry's signing key is missing from {directory}: run `manage.py registry_config`."
        ) from None
    return key, certificate


class SigningMaterialMissing(Exception):
    """`manage.py registry_config` has not been run: no token can be signed."""


def ensure_signing_material(directory: Path) -> bool:
    """Write a signing key and its self-signed certificate into `directory` unless both are there.
    True when they were made now."""
    directory.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = directory / KEY_FILE, directory / CERT_FILE
    if key_path.exists() and cert_path.exists():
        return False
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "console registry token signer")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # The key is written owner-only before its bytes go in; the certificate is public.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return True
