from __future__ import annotations

from django.conf import settings
from django.db import models

from builds.constants import ArchiveFormat, SourceKind


class RepositoryQuerySet(models.QuerySet):
    def for_user(self, user) -> RepositoryQuerySet:
        return self.filter(owner=user)


class Repository(models.Model):
    """A named home for a project's sources and builds; names are unique per owner."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="repositories")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = RepositoryQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "repositories"
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_repository_name_per_owner")]

    def __str__(self) -> str:
        return self.name


class SourceQuerySet(models.QuerySet):
    def for_user(self, user) -> SourceQuerySet:
        return self.filter(repository__owner=user)


class Source(models.Model):
    """One snapshot of a repository's files: an uploaded archive or a git checkout, stored as an archive.

    The stored archive is content-addressed by `sha256`: two sources with the same bytes share one blob.
    """

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="sources")
    kind = models.CharField(max_length=16, choices=SourceKind.choices)
    archive_format = models.CharField(max_length=16, choices=ArchiveFormat.choices)
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.BigIntegerField(help_text="Bytes of the stored archive.")
    unpacked_size = models.BigIntegerField(default=0, help_text="Bytes of all its files.")
    file_count = models.PositiveIntegerField(default=0)
    filename = models.CharField(max_length=255, blank=True, help_text="The uploaded file's name, if any.")
    git_url = models.CharField(max_length=2000, blank=True)
    git_ref = models.CharField(max_length=255, blank=True)
    commit = models.CharField(max_length=40, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = SourceQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        if self.kind == SourceKind.GIT:
            return f"{self.git_url}@{self.git_ref or 'HEAD'} ({self.commit[:12]})"
        return f"{self.filename or 'archive'} ({self.sha256[:12]})"

    @property
    def commit_or_none(self) -> str | None:
        return self.commit or None
