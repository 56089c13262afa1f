"""Registry accounts, their checks and browsing, pushes and pulls: one function per act, for the browser and the
API alike, in one package by concern:

- accounts.py: the accounts, whether the console may connect to their registries, the login test;
- browse.py: a registry's catalog and tags, publishing repositories of the console's own registry;
- transfers.py: triggering pushes and pulls, the worker's run of them (Progress, TransferRunner), their reaper.

Every name is re-exported here, so that `from registry import services; services.trigger_push(...)` keeps
working. A test that replaces a function the code looks up patches it in the submodule that looks it up.
"""

from __future__ import annotations

from console import jobs
from registry.services.accounts import (
    RegistryError,
    _check_registry_url,
    _clean_account,
    _console_token_source,
    _unresolvable,
    accounts_for,
    check_destination,
    check_login,
    client_for,
    create_account,
    delete_account,
    destination_refusal,
    ensure_console_account,
    update_account,
)
from registry.services.browse import (
    CATALOG_LIMIT,
    CATALOG_PAGE,
    NO_CATALOG,
    list_repositories,
    list_tags,
    make_private,
    make_public,
)
from registry.services.transfers import (
    LAYER_ID_RE,
    PUSH_NAME_LOCK_SECONDS,
    PUSH_NAME_WAIT_SECONDS,
    RUN_PULL_TASK,
    RUN_PUSH_TASK,
    WORKER_LOST,
    Progress,
    TransferRunner,
    _pull_lines,
    _push_lines,
    _remove_push_name,
    auth_config_for,
    exclusive_name,
    grant_image,
    reap_lost_transfers,
    resolve_image,
    run_pull,
    run_push,
    service_auth_config,
    split_reference,
    trigger_pull,
    trigger_push,
)

__all__ = [
    "jobs",
    "RegistryError",
    "ensure_console_account",
    "accounts_for",
    "_clean_account",
    "_check_registry_url",
    "_unresolvable",
    "create_account",
    "update_account",
    "delete_account",
    "_console_token_source",
    "client_for",
    "destination_refusal",
    "check_destination",
    "check_login",
    "CATALOG_PAGE",
    "CATALOG_LIMIT",
    "NO_CATALOG",
    "list_repositories",
    "list_tags",
    "make_public",
    "make_private",
    "RUN_PUSH_TASK",
    "RUN_PULL_TASK",
    "LAYER_ID_RE",
    "auth_config_for",
    "service_auth_config",
    "grant_image",
    "resolve_image",
    "trigger_push",
    "split_reference",
    "trigger_pull",
    "Progress",
    "TransferRunner",
    "_push_lines",
    "PUSH_NAME_LOCK_SECONDS",
    "PUSH_NAME_WAIT_SECONDS",
    "exclusive_name",
    "_pull_lines",
    "run_push",
    "run_pull",
    "WORKER_LOST",
    "reap_lost_transfers",
    "_remove_push_name",
]
