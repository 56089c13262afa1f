from __future__ import annotations

from django.conf import settings
from django.db import models

from console.constants import JobStatus
from console.crypto import EncryptedTextField
from console.jobs import Job
from console.numbering import NumberedPerOwner, unique_number_per_owner
from registry import kinds
from registry.constants import RegistryKind


class RegistryAccountQuerySet(models.QuerySet):
    def for_user(self, user) -> RegistryAccountQuerySet:
        return self.filter(owner=user)


class RegistryAccount(models.Model):
    """A registry and the credentials a user keeps for it; the secret is encrypted at rest and never shown."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="registry_accounts")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=RegistryKind.choices)
    url = models.CharField(max_length=255, help_text="The registry's host or URL, filled in from the kind.")
    username = models.CharField(max_length=255, blank=True)
    secret = EncryptedTextField(blank=True, help_text="The password or token; write-only.")
    ca_certificate = models.TextField(blank=True, help_text="PEM of the CA that signed a generic registry's TLS.")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = RegistryAccountQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_registry_name_per_owner")]

    def __str__(self) -> str:
        return self.name

    @property
    def endpoint(self) -> kinds.Endpoint:
        return kinds.endpoint(self.kind, self.url)

    @property
    def is_console(self) -> bool:
        return self.kind == RegistryKind.CONSOLE

    @property
    def has_secret(self) -> bool:
        return bool(self.secret)


class PublicRepositoryQuerySet(models.QuerySet):
    def for_user(self, user) -> PublicRepositoryQuerySet:
        return self.filter(owner=user)


class PublicRepository(models.Model):
    """A repository of the console's registry that anyone may pull; its owner still is the only one to push."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="public_repositories")
    name = models.CharField(max_length=255, unique=True, help_text="The full name, `<username>/<repository>`.")
    created = models.DateTimeField(auto_now_add=True)

    objects = PublicRepositoryQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "public repositories"

    def __str__(self) -> str:
        return self.name


class TransferQuerySet(models.QuerySet):
    def for_user(self, user) -> TransferQuerySet:
        return self.filter(owner=user)


class Transfer(Job, NumberedPerOwner):
    """What a push and a pull share: the account used, per-layer progress, the digest reached."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    registry = models.ForeignKey(RegistryAccount, on_delete=models.CASCADE, related_name="+")
    # [{id, status, current, total}] in the order the engine first named each layer.
    layers = models.JSONField(default=list, blank=True)
    digest = models.CharField(max_length=100, blank=True)

    objects = TransferQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["-queued_at"]


class Push(Transfer):
    """An image of the build engine sent to a registry as `<repository>:<tag>`."""

    # An image reference or id on the build engine; once the console has images, one of them.
    image = models.CharField(max_length=255)
    repository = models.CharField(max_length=255)
    tag = models.CharField(max_length=128, default="latest")

    class Meta(Transfer.Meta):
        verbose_name_plural = "pushes"
        constraints = [unique_number_per_owner("push")]

    @property
    def target(self) -> str:
        return f"{self.registry.endpoint.reference(self.repository)}:{self.tag}"


class Pull(Transfer):
    """An image fetched from a registry onto the build engine."""

    reference = models.CharField(max_length=400, help_text="`<repository>[:tag|@digest]` within the registry.")
    image_id = models.CharField(max_length=100, blank=True)

    class Meta(Transfer.Meta):
        constraints = [unique_number_per_owner("pull")]

    @property
    def source(self) -> str:
        return self.registry.endpoint.reference(self.reference)


class RetentionRuleQuerySet(models.QuerySet):
    def for_user(self, user) -> RetentionRuleQuerySet:
        return self.filter(owner=user)


class RetentionRule(models.Model):
    """Which tags of one repository of the console's registry to keep (registry/services/retention.py): a tag is
    kept when it is protected, matches a pattern, is among the newest `keep_last` or younger than
    `keep_younger_than` days; the others are deleted, daily. A rule with none of the three keeps everything."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="retention_rules")
    repository = models.CharField(max_length=255, unique=True, help_text="The full name, `<username>/<repository>`.")
    keep_last = models.PositiveIntegerField(null=True, blank=True)
    keep_matching = models.JSONField(default=list, blank=True)
    keep_younger_than = models.PositiveIntegerField(null=True, blank=True, help_text="Days.")
    protect = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = RetentionRuleQuerySet.as_manager()

    class Meta:
        ordering = ["repository"]

    def __str__(self) -> str:
        return f"retention of {self.repository}"


class RetentionRunQuerySet(models.QuerySet):
    def for_user(self, user) -> RetentionRunQuerySet:
        return self.filter(owner=user)


class RetentionRun(Job):
    """One application of a repository's retention rule: the tags it deleted, the bytes the preview said it
    frees (the space returns at the next garbage collection)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    repository = models.CharField(max_length=255, db_index=True)
    scheduled = models.BooleanField(default=False, help_text="Started by the daily schedule, not by a person.")
    deleted = models.JSONField(default=list, blank=True)
    kept = models.JSONField(default=list, blank=True)
    frees_bytes = models.BigIntegerField(null=True, blank=True)

    objects = RetentionRunQuerySet.as_manager()

    class Meta:
        ordering = ["-queued_at"]


class GarbageCollectionQuerySet(models.QuerySet):
    def in_progress(self) -> bool:
        """Whether a collection is running: the registry is (or is about to be) read-only."""
        return self.filter(status=JobStatus.RUNNING).exists()


class GarbageCollection(Job):
    """A staff member's run of Distribution's `garbage-collect` over the console's registry, read-only meanwhile
    (registry/services/gc.py); `freed_bytes` is the storage folder's size before less after."""

    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                     related_name="+")
    delete_untagged = models.BooleanField(default=False)
    bytes_before = models.BigIntegerField(null=True, blank=True)
    bytes_after = models.BigIntegerField(null=True, blank=True)
    freed_bytes = models.BigIntegerField(null=True, blank=True)
    # The same for every row: with the constraint below, at most one collection is queued or running (two would
    # fight over the registry's mode).
    registry = models.CharField(max_length=16, default="console", editable=False)

    objects = GarbageCollectionQuerySet.as_manager()

    class Meta:
        ordering = ["-queued_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["registry"], condition=models.Q(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]),
                name="one_active_garbage_collection"),
        ]
