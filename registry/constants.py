"""Named values of the registry app: the kinds of registry accounts and the console registry's scopes."""

from __future__ import annotations

from django.db import models


class RegistryKind(models.TextChoices):
    DOCKERHUB = "dockerhub", "Docker Hub"
    QUAY = "quay", "Quay.io"
    GCR = "gcr", "Google Container Registry"
    GHCR = "ghcr", "GitHub Container Registry"
    GENERIC = "generic", "Any v2 registry"
    # The console's own registry: one account per user, made by the console, never edited by hand.
    CONSOLE = "console", "The console's registry"


# The kinds a user may choose when adding an account.
USER_KINDS = [kind for kind in RegistryKind if kind != RegistryKind.CONSOLE]

# What a user may be granted on a repository of the console's registry.
PULL = "pull"
PUSH = "push"
OWNER_ACTIONS = frozenset({PULL, PUSH})
PUBLIC_ACTIONS = frozenset({PULL})

# The Docker Hub's three names: images are named on the index, the engine authenticates against the v1 index
# URL (what `docker login` stores), and the Registry HTTP API answers on its own host.
DOCKERHUB_INDEX = "docker.io"
DOCKERHUB_AUTH = "https://index.docker.io/v1/"
DOCKERHUB_API = "https://registry-1.docker.io"
GCR_USERNAME = "_json_key"

# How often at most a running push or pull writes its layer progress to the database, in seconds.
PROGRESS_INTERVAL = 0.5

# What pushes and deletes are told while a garbage collection has the console's registry read-only.
READ_ONLY = ("The console's registry is read-only while its garbage is collected: retry in a minute "
             "(pulls work meanwhile).")
