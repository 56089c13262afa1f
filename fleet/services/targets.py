"""What a deployment target's run needs wherever it deploys (a host's containers in fleet/services/deployer.py, a
swarm's service in fleet/services/swarm_deployer.py): its failure, its progress, the registry account it pulls with."""

from __future__ import annotations

import re
from typing import Any

from console.engine import containers as engine_containers
from fleet.models import Deployment, DeploymentTarget

# What registries answer to missing or wrong credentials, as the engine passes it on.
REFUSED_RE = re.compile(r"unauthorized|authentication required|denied", re.IGNORECASE)


class TargetFailed(Exception):
    """A target could not be deployed; the message says why, for the user."""


def _update_target(target: DeploymentTarget, **fields: Any) -> None:
    for field, value in fields.items():
        setattr(target, field, value)
    DeploymentTarget.objects.filter(pk=target.pk).update(**fields)


def pull_account(deployment: Deployment):
    """The deployment's registry account, still the owner's; TargetFailed when it was removed."""
    from registry.models import RegistryAccount

    account = RegistryAccount.objects.filter(pk=deployment.registry_account_id, owner=deployment.owner).first()
    if account is None:
        raise TargetFailed("the registry account of this deployment was removed")
    return account


def _repository_in(account, reference: str) -> str:
    """The repository `reference` names, as the account's registry names it (without its address)."""
    repository, _ = engine_containers.split_reference(reference)
    index = account.endpoint.index
    return repository[len(index) + 1:] if repository.startswith(index + "/") else repository


def _auth_config(account, reference: str) -> dict[str, str]:
    """The engine's auth config for pulling `reference` with a stored account (a scoped token for the console's
    own registry, the account's username and password elsewhere)."""
    from registry.services import auth_config_for

    return auth_config_for(account, _repository_in(account, reference), {"pull"})


def service_credentials(account, reference: str) -> dict[str, str]:
    """What a swarm service carries so that every node pulls `reference` for as long as the service runs (for the
    console's own registry a long-lived credential for pull of that repository only, not a short-lived token)."""
    from registry.services import service_auth_config

    return service_auth_config(account, _repository_in(account, reference))
