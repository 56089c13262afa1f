from __future__ import annotations

from django.conf import settings
from django.db import models

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
