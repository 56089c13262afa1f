"""The pull credential a swarm service carries for the console's own registry (registry/tokens.py
service_pull_credential): long-lived, pull of one repository only, checked again at every exchange. The token
endpoint's answers to it; then the real engine against a real Distribution that trusts the running console (token
auth): the credential pulls its repository, and can neither push nor pull another user's repository."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model

from console.accounts.usernames import MESSAGE_RESERVED, problems
from console.engine import Engine, EngineError
from registry.constants import RegistryKind
from registry.models import PublicRepository, RegistryAccount
from registry.services import ensure_console_account, service_auth_config
from registry.tokens import SERVICE_PULL_USER, Scope, issue_token, namespace_of, service_pull_credential
from tests.conftest import PASSWORD
from tests.registry.test_token_endpoint import ask, basic, claims_of, signing  # noqa: F401  (a fixture)

PULL = [{"type": "repository", "name": "alice/app", "actions": ["pull"]}]


@pytest.fixture
def account(owner, settings):
    settings.REGISTRY_ADDRESS = "registry.example:5000"
    return ensure_console_account(owner)


def credential(account, repository: str = "alice/app") -> str:
    username, password = service_pull_credential(account.pk, account.owner_id, repository)
    assert username == SERVICE_PULL_USER
    return basic(username, password)


def test_it_grants_pull_of_its_repository_and_nothing_else(client, account, signing):  # noqa: F811
    response = ask(client, "repository:alice/app:pull,push", "repository:alice/other:pull",
                   "repository:mallory/app:pull", "registry:catalog:*", auth=credential(account))

    assert response.status_code == 200
    claims = claims_of(response, signing)
    assert claims["sub"] == "alice" and claims["access"] == PULL
    # Asked for push alone, or for another repository: granted nothing.
    for scope in ("repository:alice/app:push", "repository:alice/other:pull,push"):
        assert claims_of(ask(client, scope, auth=credential(account)), signing)["access"] == [], scope


def test_a_forged_edited_or_expired_credential_is_a_401(client, account, signing, monkeypatch):  # noqa: F811
    from django.core import signing as django_signing

    from registry import tokens

    _, good = service_pull_credential(account.pk, account.owner_id, "alice/app")
    forged = [
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        django_signing.dumps({"a": account.pk, "u": account.owner_id, "r": "alice/app"}, salt="another-salt"),
        # A build cache credential is no service's.
        tokens.build_cache_credential("console-cache/r1")[1],
        "",
    ]
    for password in forged:
        response = ask(client, "repository:alice/app:pull", auth=basic(SERVICE_PULL_USER, password))
        assert response.status_code == 401, password
        assert response.json()["details"] == "The service's pull credential is not valid."
    monkeypatch.setattr(tokens, "SERVICE_PULL_CREDENTIAL_SECONDS", -1)
    assert ask(client, "repository:alice/app:pull", auth=basic(SERVICE_PULL_USER, good)).status_code == 401


def test_it_stops_with_its_account_and_its_owners_access(client, owner, outsider, account, signing):  # noqa: F811
    # Signed for a repository the owner may not pull: granted nothing.
    assert claims_of(ask(client, "repository:mallory/app:pull", auth=credential(account, "mallory/app")),
                     signing)["access"] == []
    # ... until mallory makes it public.
    PublicRepository.objects.create(owner=outsider, name="mallory/app")
    assert claims_of(ask(client, "repository:mallory/app:pull", auth=credential(account, "mallory/app")),
                     signing)["access"] == [{"type": "repository", "name": "mallory/app", "actions": ["pull"]}]
    # Another user's account id under the owner's id, an account that is not the console's, an inactive owner, a
    # removed account: refused.
    theirs = ensure_console_account(outsider)
    _, password = service_pull_credential(theirs.pk, owner.pk, "alice/app")
    assert ask(client, "repository:alice/app:pull", auth=basic(SERVICE_PULL_USER, password)).status_code == 401
    generic = RegistryAccount.objects.create(owner=owner, name="team", kind=RegistryKind.GENERIC, url="r.example")
    assert ask(client, "repository:alice/app:pull", auth=credential(generic)).status_code == 401
    good = credential(account)
    get_user_model().objects.filter(pk=owner.pk).update(is_active=False)
    assert ask(client, "repository:alice/app:pull", auth=good).status_code == 401
    get_user_model().objects.filter(pk=owner.pk).update(is_active=True)
    assert ask(client, "repository:alice/app:pull", auth=good).status_code == 200
    account.delete()
    assert ask(client, "repository:alice/app:pull", auth=good).status_code == 401


def test_the_username_is_reserved_and_a_password_login_as_it_is_refused(client, signing, db):  # noqa: F811
    assert problems(SERVICE_PULL_USER) == [MESSAGE_RESERVED]
    squatter = get_user_model().objects.create_user(SERVICE_PULL_USER, "s@example.com", PASSWORD)
    assert squatter.pk
    assert ask(client, f"repository:{SERVICE_PULL_USER}/app:pull", auth=basic(SERVICE_PULL_USER, PASSWORD)
               ).status_code == 401


def test_a_service_carries_it_for_the_consoles_registry_and_the_password_elsewhere(owner, account):
    carried = service_auth_config(account, "alice/app")

    assert set(carried) == {"username", "password", "serveraddress"} and "registrytoken" not in carried
    assert (carried["username"], carried["serveraddress"]) == (SERVICE_PULL_USER, "registry.example:5000")
    generic = RegistryAccount.objects.create(owner=owner, name="team", kind=RegistryKind.GENERIC,
                                             url="http://r.example:5000", username="u", secret="s")
    assert service_auth_config(generic, "team/app") == {"username": "u", "password": "s",
                                                        "serveraddress": "r.example:5000"}


# -- the real engine and a real Distribution trusting the console -----------------------------------------------

def _push(engine: Engine, image_id: str, target: str, tag: str, auth_config: dict) -> list[dict]:
    engine.api.tag(image_id, target, tag)
    try:
        return list(engine.api.push(target, tag=tag, stream=True, decode=True, auth_config=auth_config))
    finally:
        engine.api.remove_image(f"{target}:{tag}")


@pytest.mark.engine
@pytest.mark.django_db(transaction=True)
def test_the_engine_pulls_its_repository_with_it_and_cannot_push_or_pull_another(console_registry, owner, outsider):
    from tests.fixtures.registry import TOKEN_SERVICE

    tag = uuid.uuid4().hex[:8]
    mine, theirs = f"{console_registry.address}/alice/app", f"{console_registry.address}/mallory/app"
    with Engine.for_builds() as engine, engine.errors("Preparing the test"):
        image_id = engine.api.inspect_image("busybox:1.35.0")["Id"]
        for user, target in ((owner, mine), (outsider, theirs)):
            name = f"{namespace_of(user)}/app"
            token = issue_token(user, TOKEN_SERVICE, [Scope("repository", name, frozenset({"push", "pull"}))])
            assert not [event for event in _push(engine, image_id, target, tag, {"registrytoken": token["token"]})
                        if "error" in event]
    carried = service_auth_config(ensure_console_account(owner), "alice/app")
    try:
        with Engine.for_builds() as engine:
            with engine.errors("Pulling with the service's credential"):
                engine.api.pull(mine, tag=tag, auth_config=carried)
                assert engine.api.inspect_image(f"{mine}:{tag}")["Id"] == image_id

            pushed = _push(engine, image_id, mine, f"pushed-{tag}", carried)
            assert any("denied" in event.get("error", "") or "unauthorized" in event.get("error", "")
                       for event in pushed), pushed
            with pytest.raises(EngineError) as refused, engine.errors("Pulling another user's repository"):
                engine.api.pull(theirs, tag=tag, auth_config=carried)
            assert "denied" in str(refused.value) or "unauthorized" in str(refused.value)
            assert not engine.image_exists(f"{theirs}:{tag}")
    finally:
        with Engine.for_builds() as engine, engine.errors("Cleaning up"):
            for reference in (f"{mine}:{tag}", f"{theirs}:{tag}"):
                if engine.image_exists(reference):
                    engine.api.remove_image(reference)
    log = console_registry.log()
    assert carried["password"] not in log
