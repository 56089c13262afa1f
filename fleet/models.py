from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.utils import timezone

from console import netpolicy
from console.constants import JobStatus
from console.crypto import EncryptedTextField
from console.engine import Engine, EngineRefused, SSHMaterial, TLSMaterial
from console.jobs import Job
from console.numbering import NumberedPerOwner, unique_number_per_owner
from fleet.constants import HostStatus, PendingStatus, RestartPolicy


class HostQuerySet(models.QuerySet):
    def for_user(self, user) -> HostQuerySet:
        return self.filter(owner=user)


class Host(models.Model):
    """A Docker Engine a user deploys to: how to reach it, its labels, and what the last check saw."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hosts")
    name = models.CharField(max_length=100)
    url = models.CharField(max_length=500, help_text="unix:///path, tcp://host:port or ssh://user@host.")
    # TLS material for tcp:// engines behind --tlsverify; encrypted at rest, never shown again.
    tls_ca_cert = EncryptedTextField(blank=True)
    tls_client_cert = EncryptedTextField(blank=True)
    tls_client_key = EncryptedTextField(blank=True)
    # The key the console logs in with to an ssh:// engine; encrypted at rest, write-only like the TLS key.
    ssh_private_key = EncryptedTextField(blank=True)
    # The ssh server's public host key ("ssh-ed25519 AAAA..."): given by the user, or recorded at the first
    # connection (trust on first use); every later connection must be presented the same key.
    ssh_host_key = models.TextField(blank=True)
    # The engine's own ID (`docker info`), recorded at each check: tells whether two hosts are one engine.
    engine_id = models.CharField(max_length=200, blank=True, db_index=True)
    labels = models.JSONField(default=dict, blank=True, help_text='Like {"env": "prod"}; deployments select by them.')
    address_override = models.CharField(
        max_length=255, blank=True, help_text="Where published ports are reached, when not the URL's host."
    )
    status = models.CharField(max_length=16, choices=HostStatus.choices, default=HostStatus.UNKNOWN)
    status_reason = models.TextField(blank=True, help_text="Why the host is down, in the words of the check.")
    info = models.JSONField(default=dict, blank=True, help_text="The engine's facts from the last good check.")
    # Swarm mode as the last good check read it from a manager's engine ({id, managers, nodes}, see
    # console/engine/swarm.py): pages and the API read it here, never from the engine. Null for a plain engine and
    # for a worker node's engine (which cannot list the nodes); swarm_reason says which.
    swarm = models.JSONField(null=True, blank=True, default=None)
    swarm_reason = models.CharField(max_length=300, blank=True, help_text="Why `swarm` is null, after a check.")
    last_seen = models.DateTimeField(null=True, blank=True, help_text="When the engine last answered.")
    last_checked = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = HostQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_host_name_per_owner")]

    def __str__(self) -> str:
        return self.name

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls_ca_cert and self.tls_client_cert and self.tls_client_key)

    @property
    def tls(self) -> TLSMaterial | None:
        if not self.uses_tls:
            return None
        return TLSMaterial(ca_cert=self.tls_ca_cert, client_cert=self.tls_client_cert, client_key=self.tls_client_key)

    @property
    def address(self) -> str:
        """Where the host's published ports answer, like `docker-machine ip`: the override, else the URL's host."""
        if self.address_override:
            return self.address_override
        if self.url.startswith("unix://"):
            return "127.0.0.1"
        return urlsplit(self.url).hostname or ""

    @property
    def uses_ssh(self) -> bool:
        return self.url.startswith("ssh://")

    def engine(self, timeout: int | None = None) -> Engine:
        """A connection to the host's engine on its owner's behalf. The URL is checked again now (DNS answers and
        the console's settings change after registration): a URL that became refused raises EngineRefused, so
        every caller, the periodic check included, reports that instead of connecting."""
        try:
            netpolicy.check_url(self.url, user=self.owner, purpose=netpolicy.HOST)
        except netpolicy.DestinationRefused as exc:
            raise EngineRefused(f"Connecting: {exc}") from exc
        ssh = SSHMaterial(self.ssh_private_key, self.ssh_host_key) if self.uses_ssh else None
        return Engine(self.url, tls=self.tls, timeout=timeout, ssh=ssh, on_new_host_key=self._record_host_key)

    def _record_host_key(self, key: str) -> None:
        # Trust on first use: only while none is recorded, so that a key once recorded is never replaced here.
        if Host.objects.filter(pk=self.pk, ssh_host_key="").update(ssh_host_key=key):
            self.ssh_host_key = key

    def matches(self, selector: dict[str, str]) -> bool:
        return all(str(self.labels.get(key)) == value for key, value in selector.items())

    @property
    def label_text(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in sorted(self.labels.items()))


class DeploymentQuerySet(models.QuerySet):
    def for_user(self, user) -> DeploymentQuerySet:
        return self.filter(owner=user)

    def releases(self, owner, name: str) -> DeploymentQuerySet:
        """The successful deployments of one app name: its release history, newest first."""
        return self.filter(owner=owner, name=name, status=JobStatus.SUCCEEDED).order_by("-pk")


class Deployment(Job, NumberedPerOwner):
    """One release of an app (`name`) to a set of hosts; a job whose targets run in parallel, one per host."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="deployments")
    name = models.CharField(max_length=63, help_text="The app's name: a host runs one container of each name.")
    image = models.CharField(max_length=500, help_text="What was asked for: a reference or image id.")
    image_id = models.CharField(max_length=100, blank=True, help_text="The image id, resolved when known.")
    image_digest = models.CharField(max_length=500, blank=True, help_text="The registry digest, when pulled.")
    # The registry account to pull with; a plain id so that the fleet does not depend on the registry's schema.
    registry_account_id = models.BigIntegerField(null=True, blank=True)
    selector = models.CharField(max_length=500, blank=True, help_text="The label selector the hosts came from.")
    ports = models.JSONField(default=dict, blank=True)
    env = models.JSONField(default=dict, blank=True)
    restart_policy = models.CharField(max_length=16, choices=RestartPolicy.choices, default=RestartPolicy.NO)
    memory_limit = models.BigIntegerField(null=True, blank=True, help_text="Bytes.")
    cpus = models.FloatField(null=True, blank=True)
    user = models.CharField(max_length=100, blank=True)
    rollback_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # A scale of a swarm release: the release whose service this deployment gave another replica count (same image
    # digest and settings); its run changes only the service's replica count, so that Swarm does not roll the tasks.
    scale_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # A deployment to a swarm runs as a service: {mode, replicas, placement, update, rollback} as asked
    # (fleet/services/deployments.py clean_swarm); null for a deployment to hosts.
    swarm = models.JSONField(null=True, blank=True)
    # `repository:tag` in the console's registry this app follows (fleet/services/follow.py): a push that moves the
    # tag deploys its digest as a new release, at once or once a person approves (`follow_approval`).
    follow_tag = models.CharField(max_length=300, blank=True)
    follow_approval = models.BooleanField(default=False)
    # What started this release when no one asked for it directly: {by: "image.pushed", event, tag, digest,
    # pushed_by, approved_by}; null for a deployment someone asked for.
    trigger = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = DeploymentQuerySet.as_manager()

    class Meta:
        ordering = ["-pk"]
        constraints = [unique_number_per_owner("deployment")]

    def __str__(self) -> str:
        return f"{self.name} #{self.display_number}"

    @property
    def image_label(self) -> str:
        """What containers are labelled with: the registry digest when there is one, else the image id."""
        return self.image_digest or self.image_id


class DeploymentTarget(models.Model):
    """One host of a deployment, with its own progress and error."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="targets")
    host = models.ForeignKey(Host, null=True, on_delete=models.SET_NULL, related_name="targets")
    host_name = models.CharField(max_length=100, help_text="The host's name then, kept when the host goes.")
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    step = models.CharField(max_length=200, blank=True, help_text="What the target is doing now.")
    container_id = models.CharField(max_length=64, blank=True)
    url = models.CharField(max_length=500, blank=True, help_text="Where the running app answers.")
    error = models.TextField(blank=True)
    # On a swarm: the service as the rollout was last seen ({id, replicas, running, update_state, tasks: [...]},
    # console/engine/swarm.py service_state); null on a plain host.
    service = models.JSONField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["host_name", "pk"]

    def __str__(self) -> str:
        return f"{self.deployment} on {self.host_name} ({self.status})"


class PendingReleaseQuerySet(models.QuerySet):
    def for_user(self, user) -> PendingReleaseQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(owner=user)


class PendingRelease(models.Model):
    """A push that moved a followed tag, waiting for a person (the app's `follow_approval`): approving it deploys
    `digest` as a new release (`release`), declining keeps what runs. A newer push supersedes a waiting one."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pending_releases")
    # The release it would follow on from (its settings and hosts).
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="pending_releases")
    name = models.CharField(max_length=63)
    follow_tag = models.CharField(max_length=300)
    digest = models.CharField(max_length=100)
    # The image.pushed event (console/events), as a plain id.
    event_id = models.BigIntegerField(null=True, blank=True)
    pushed_by = models.CharField(max_length=150, blank=True)
    status = models.CharField(max_length=16, choices=PendingStatus.choices, default=PendingStatus.PENDING)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    release = models.ForeignKey(Deployment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(default=timezone.now)

    objects = PendingReleaseQuerySet.as_manager()

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"{self.name}: {self.follow_tag}@{self.digest[:19]} ({self.status})"
