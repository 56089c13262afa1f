"""What the dashboard home counts for a user."""

from __future__ import annotations

from django.apps import apps

# (label shown, model): every model counted has an `owner`.
COUNTED = [
    ("Repositories", "builds.Repository"),
    ("Builds", "builds.Build"),
    ("Images", "builds.Image"),
    ("Registries", "registry.RegistryAccount"),
    ("Hosts", "fleet.Host"),
]


def counts_for(user) -> list[tuple[str, int]]:
    return [(label, apps.get_model(name).objects.filter(owner=user).count()) for label, name in COUNTED]
