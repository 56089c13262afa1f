"""Storage at a glance: what each repository of the console's registry and each user's namespace takes.

`total_bytes` is the blobs (configs and layers, by digest, their bytes on disk) its tags reference, each blob once;
`unique_bytes` the part no other holder references: for a repository, no tag of any other repository; for a user,
no tag of another user's repositories (the build cache's namespace counts as another's). The unique bytes are
what deleting it frees at the next garbage collection. Read from the storage folder (registry/storage.py).

A user learns from their unique bytes whether a blob of theirs is also someone else's, never whose or which
repository; that takes having the blob's exact bytes already, as the registry's own cross-repository mount would.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from registry import storage
from registry.tokens import namespace_of


@dataclass
class RepositoryUsage:
    name: str
    tags: int
    total_bytes: int
    unique_bytes: int


@dataclass
class NamespaceUsage:
    namespace: str
    total_bytes: int = 0
    unique_bytes: int = 0
    repositories: list[RepositoryUsage] = field(default_factory=list)


def _namespace(repository: str) -> str:
    return repository.split("/", 1)[0]


def usage(index: storage.StorageIndex | None = None) -> dict[str, NamespaceUsage]:
    """{namespace: its usage} of every namespace in the registry."""
    index = index if index is not None else storage.read_index()
    holders: dict[str, set[str]] = defaultdict(set)
    blobs_of = {name: index.blobs_of(name) for name in index.tags}
    for name, blobs in blobs_of.items():
        for digest in blobs:
            holders[digest].add(name)
    found: dict[str, NamespaceUsage] = {}
    owned: dict[str, set[str]] = defaultdict(set)
    for name in sorted(index.tags):
        blobs = blobs_of[name]
        unique = {digest for digest in blobs if holders[digest] == {name}}
        namespace = _namespace(name)
        entry = found.setdefault(namespace, NamespaceUsage(namespace))
        entry.repositories.append(RepositoryUsage(name, len(index.tags[name]), index.bytes_of(blobs),
                                                  index.bytes_of(unique)))
        owned[namespace] |= blobs
    for namespace, entry in found.items():
        blobs = owned[namespace]
        entry.total_bytes = index.bytes_of(blobs)
        entry.unique_bytes = index.bytes_of(
            {digest for digest in blobs if all(_namespace(name) == namespace for name in holders[digest])})
    return found


def usage_for(user, index: storage.StorageIndex | None = None) -> NamespaceUsage:
    """The user's namespace: its repositories (those with tags) and its totals."""
    namespace = namespace_of(user)
    return usage(index).get(namespace, NamespaceUsage(namespace))
