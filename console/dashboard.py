"""What the dashboard home counts for a user."""

from __future__ import annotations

from django.apps import apps

# (label shown, model, the field that names the owner); a model not built yet counts zero.
COUNTED = [
    ("Repositories", "builds.Repository", "owner"),
    ("Builds", "builds.Build", "owner"),
    ("Images", "builds.Image", "owner"),
    ("Registries", "registry.RegistryAccount", "owner"),
    ("Hosts", "fleet.Host", "owner"),
]


def counts_for(user) -> list[tuple[str, int]]:
    result = []
    for label, model_name, owner_field in COUNTED:
        try:
            model = apps.get_model(model_name)
        except LookupError:
            result.append((label, 0))
            continue
        result.append((label, model.objects.filter(**{owner_field: user}).count()))
    return result
