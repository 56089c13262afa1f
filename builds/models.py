from __future__ import annotations

from django.conf import settings
from django.db import models

from builds.constants import (
    AnalysisStatus,
    ArchiveFormat,
    Builder,
    BuilderChoice,
    ImageOrigin,
    NodeStatus,
    PackageEcosystem,
    SourceKind,
    StepStatus,
)
from console.constants import JobStatus
from console.crypto import EncryptedTextField
from console.jobs import Job
from console.numbering import NumberedPerOwner, unique_number_per_owner


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


class BuildNode(models.Model):
    """An engine and the Celery worker bound to it, consuming its own queue: one member of the build farm.

    The worker registers the node when it starts and keeps `heartbeat_at` and the figures below fresh; the
    scheduler (builds/services/nodes.py) sends a build only to a node that is up, not drained and has room.
    """

    name = models.CharField(max_length=100, unique=True)
    engine_url = models.CharField(max_length=500, help_text="The DOCKER_HOST of the node's worker.")
    queue = models.CharField(max_length=200, help_text="The Celery queue the node's worker consumes.")
    worker = models.CharField(max_length=255, blank=True)
    capacity = models.PositiveIntegerField(default=2, help_text="Builds the node takes at once.")
    status = models.CharField(max_length=16, choices=NodeStatus.choices, default=NodeStatus.UP)
    drained = models.BooleanField(default=False, help_text="A drained node finishes its builds but gets no new ones.")
    engine_ok = models.BooleanField(default=False)
    engine_error = models.TextField(blank=True)
    running_builds = models.PositiveIntegerField(default=0)
    load = models.FloatField(null=True, blank=True, help_text="One-minute load average of the worker's machine.")
    free_disk = models.BigIntegerField(null=True, blank=True, help_text="Free bytes under the engine's data root.")
    base_images = models.JSONField(default=list, blank=True, help_text="Tags of the images the engine holds.")
    registered_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SharedImage(models.Model):
    """A base image every user may build FROM, by its plain name (`busybox:1.35.0`): one that
    `import_base_image` made or that an operator shared (`manage.py share_image`). No user can give an image a
    plain name (theirs live under `console-u<id>/`), so the name cannot be made to mean another image."""

    reference = models.CharField(max_length=255, unique=True, help_text="The normalised name, like busybox:1.35.0.")
    image_id = models.CharField(max_length=100, blank=True, help_text="The id it had on the build engine when shared.")
    shared_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["reference"]

    def __str__(self) -> str:
        return self.reference


class Dispatch:
    """Where a queued build is in being handed to a worker, as its `task_id` says (no column of its own).

    A queued build with no task id is WAITING: it keeps its place in its owner's queue until the dispatcher
    (builds/services/builds.py `dispatch_queued`) has room for it. Any other task id means HANDED_OUT: it holds a place
    (on its node, on a farm) until a worker claims it. While the dispatcher sends it, the task id is HANDING_OUT;
    a broker that gives no task id leaves SENT_WITHOUT_ID. Query these states through `Build.objects.waiting()`,
    `.handed_out()` and `.busy()`, never by the raw strings."""

    WAITING = ""
    HANDING_OUT = "dispatching"
    SENT_WITHOUT_ID = "sent"

    @staticmethod
    def handed_out_q(prefix: str = "") -> models.Q:
        """Handed out, for a filter through a relation (prefix "builds__")."""
        return models.Q(**{f"{prefix}status": JobStatus.QUEUED}) & ~models.Q(**{f"{prefix}task_id": Dispatch.WAITING})

    @staticmethod
    def busy_q(prefix: str = "") -> models.Q:
        """Running or handed out: what takes a place of the owner's (BUILDS_PER_USER) and of a node's capacity."""
        return models.Q(**{f"{prefix}status": JobStatus.RUNNING}) | Dispatch.handed_out_q(prefix)

    @staticmethod
    def is_celery_task(task_id: str) -> bool:
        """True when the task id is the broker's (one that can be revoked), not one of the marks above."""
        return task_id not in (Dispatch.WAITING, Dispatch.HANDING_OUT, Dispatch.SENT_WITHOUT_ID)


class BuildQuerySet(models.QuerySet):
    def for_user(self, user) -> BuildQuerySet:
        return self.filter(owner=user)

    def waiting(self) -> BuildQuerySet:
        """Queued, not handed to a worker yet (see Dispatch)."""
        return self.filter(status=JobStatus.QUEUED, task_id=Dispatch.WAITING)

    def handed_out(self) -> BuildQuerySet:
        """Queued and handed to a worker's queue, not yet claimed (see Dispatch)."""
        return self.filter(Dispatch.handed_out_q())

    def busy(self) -> BuildQuerySet:
        """Running or handed out (see Dispatch)."""
        return self.filter(Dispatch.busy_q())


class Build(Job, NumberedPerOwner):
    """One run of the engine's builder (BuildKit, or the classic one where only it will do) over a source's
    context, with its steps and log.

    Build secrets (`secrets`, encrypted) reach the RUN steps that mount them and never the image; only their names
    are shown (`secret_names`). Builds from before secrets kept the values of secret build args encrypted in
    `secret_build_args`, shown as `****` in `build_args`.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="builds")
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="builds")
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="builds")
    dockerfile = models.CharField(max_length=1000, default="Dockerfile")
    path = models.CharField(max_length=1000, default=".")
    tags = models.JSONField(default=list, blank=True)
    build_args = models.JSONField(default=dict, blank=True)
    secret_args = models.JSONField(default=list, blank=True, help_text="Names of build args whose values are secret.")
    secret_build_args = EncryptedTextField(blank=True, help_text="JSON of the secret build args' values.")
    labels = models.JSONField(default=dict, blank=True)
    target = models.CharField(max_length=200, blank=True)
    no_cache = models.BooleanField(default=False)
    memory_limit = models.CharField(max_length=32, blank=True)
    cpu_shares = models.PositiveIntegerField(null=True, blank=True)
    cpuset_cpus = models.CharField(max_length=100, blank=True)
    timeout = models.PositiveIntegerField(null=True, blank=True, help_text="Seconds before the build is stopped.")
    # Secrets for `RUN --mount=type=secret,id=NAME`: {name: value}, encrypted; never in the image (a leak check
    # after the build fails it otherwise).
    secrets = EncryptedTextField(blank=True, help_text="JSON of the build secrets' values.")
    secret_names = models.JSONField(default=list, blank=True)
    requested_builder = models.CharField(max_length=16, choices=BuilderChoice.choices, default=BuilderChoice.AUTO)
    # The builder that runs it and, for the classic one, why.
    builder = models.CharField(max_length=16, choices=Builder.choices, blank=True)
    builder_reason = models.CharField(max_length=300, blank=True)

    worker = models.CharField(max_length=255, blank=True)
    step_count = models.PositiveIntegerField(default=0)
    image_id = models.CharField(max_length=100, blank=True)
    failed_step = models.PositiveIntegerField(null=True, blank=True)
    last_good_layer = models.CharField(max_length=100, blank=True)
    # The intermediate container of the running step: what cancel kills and the reaper removes.
    current_container = models.CharField(max_length=100, blank=True)
    rebuild_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rebuilds")
    # The build node the scheduler chose (None on the single-engine default); its engine runs the build.
    node = models.ForeignKey(BuildNode, null=True, blank=True, on_delete=models.SET_NULL, related_name="builds")
    # The images the Dockerfile builds FROM, read once when the build is queued: the scheduler prefers a node
    # that holds them.
    base_images = models.JSONField(default=list, blank=True)

    objects = BuildQuerySet.as_manager()

    class Meta:
        ordering = ["-queued_at", "-id"]
        constraints = [unique_number_per_owner("build")]

    def __str__(self) -> str:
        return f"build #{self.display_number} of {self.repository} ({self.status})"

    @property
    def waiting(self) -> bool:
        """Queued and not handed to a worker yet: it has a place in its owner's queue (see Dispatch)."""
        return self.status == JobStatus.QUEUED and self.task_id == Dispatch.WAITING

    @property
    def debug_command(self) -> str:
        return f"docker run --rm -ti {self.last_good_layer} /bin/sh" if self.last_good_layer else ""


class BuildStep(models.Model):
    """One Dockerfile instruction of a build: its layer, whether the cache served it, how long it took."""

    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="steps")
    number = models.PositiveIntegerField()
    instruction = models.TextField()
    # The stage it belongs to as BuildKit names it (`build`, `stage-1`; "" for a one-stage build or the classic
    # builder).
    stage = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.RUNNING)
    cached = models.BooleanField(default=False)
    layer_id = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["build", "number"], name="unique_step_number_per_build")]

    def __str__(self) -> str:
        return f"step {self.number}: {self.instruction[:40]}"

    @property
    def duration_ms(self) -> int | None:
        if self.finished_at is None:
            return None
        return int((self.finished_at - self.started_at).total_seconds() * 1000)


class ImageQuerySet(models.QuerySet):
    def for_user(self, user) -> ImageQuerySet:
        return self.filter(owner=user)


class Image(models.Model):
    """An image a user's build or pull produced, as the build engine describes it."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="images")
    image_id = models.CharField(max_length=100, help_text="The engine's id: sha256 of the image config.")
    tags = models.JSONField(default=list, blank=True)
    digests = models.JSONField(default=list, blank=True)
    size = models.BigIntegerField(default=0)
    created = models.DateTimeField(null=True, blank=True)
    architecture = models.CharField(max_length=50, blank=True)
    os = models.CharField(max_length=50, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict, blank=True)
    origin = models.CharField(max_length=16, choices=ImageOrigin.choices, default=ImageOrigin.BUILT)
    build = models.ForeignKey(Build, null=True, blank=True, on_delete=models.SET_NULL, related_name="images")
    repository = models.ForeignKey(Repository, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="images")
    # Where the image lives in a build farm (None: the single build engine); its push and analysis run there.
    node = models.ForeignKey(BuildNode, null=True, blank=True, on_delete=models.SET_NULL, related_name="images")
    recorded = models.DateTimeField(auto_now_add=True)
    # The latest run of the per-layer file analysis (ImageAnalysis, a job); its result is stored below and on the
    # layers once it succeeds.
    analysis = models.ForeignKey("ImageAnalysis", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    wasted_bytes = models.BigIntegerField(null=True, blank=True)
    efficiency = models.FloatField(null=True, blank=True)
    files_size = models.BigIntegerField(null=True, blank=True)
    # /etc/os-release (or /usr/lib/os-release) of the image's files as key -> value (ID, VERSION_ID, ...), and when
    # the analysis recorded the image's packages (ImagePackage): None before.
    os_release = models.JSONField(default=dict, blank=True)
    packages_read = models.DateTimeField(null=True, blank=True)

    objects = ImageQuerySet.as_manager()

    class Meta:
        ordering = ["-recorded", "-id"]
        constraints = [models.UniqueConstraint(fields=["owner", "image_id"], name="unique_image_per_owner")]

    def __str__(self) -> str:
        return self.tags[0] if self.tags else self.image_id[:19]

    @property
    def analysis_status(self) -> str:
        """Where the file analysis stands: its latest run's status, `none` before the first."""
        return self.analysis.status if self.analysis_id else AnalysisStatus.NONE

    @property
    def analysis_error(self) -> str:
        return self.analysis.error if self.analysis_id else ""

    def get_analysis_status_display(self) -> str:
        return AnalysisStatus(self.analysis_status).label


class ImageAnalysis(Job):
    """One run of an image's per-layer file analysis (builds/runner/analysis.py): a job like a build, claimed by
    one worker, logged, and failed by the reaper when its worker is lost. One runs at a time per image; a failed
    one may be asked for again, as a new run."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="analyses")

    class Meta:
        ordering = ["-queued_at", "-id"]
        verbose_name_plural = "image analyses"
        constraints = [models.UniqueConstraint(
            fields=["image"], condition=models.Q(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]),
            name="one_active_analysis_per_image")]


class Layer(models.Model):
    """One entry of an image's history: the instruction that made it and its size; empty ones change no file."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="layers")
    index = models.PositiveIntegerField()
    diff_id = models.CharField(max_length=100, blank=True)
    created_by = models.TextField(blank=True)
    size = models.BigIntegerField(default=0)
    empty_layer = models.BooleanField(default=False)
    created = models.DateTimeField(null=True, blank=True)
    build_step = models.ForeignKey(BuildStep, null=True, blank=True, on_delete=models.SET_NULL, related_name="layers")
    # The files this layer added, modified or removed: [{path, change, type, size}], once analysed.
    files = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["index"]
        constraints = [models.UniqueConstraint(fields=["image", "index"], name="unique_layer_index_per_image")]

    def __str__(self) -> str:
        return f"layer {self.index} of {self.image}"


class ImagePackage(models.Model):
    """One installed package of an image, as its analysed layers show it (whiteouts applied)."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="packages")
    ecosystem = models.CharField(max_length=8, choices=PackageEcosystem.choices)
    name = models.CharField(max_length=255)
    version = models.CharField(max_length=255)
    # dpkg's Source (without its "(version)") / apk's origin: the names OSV's Debian and Alpine records use;
    # "" where the package is its own source (then use `name`).
    source_name = models.CharField(max_length=255, blank=True)
    source_version = models.CharField(max_length=255, blank=True)  # dpkg "Source: x (v)"; "" = `version`
    licence = models.CharField(max_length=255, blank=True)
    purl = models.CharField(max_length=1000)
    # The lowest layer where the package at this version appears in the merged view.
    layer = models.ForeignKey(Layer, null=True, blank=True, on_delete=models.SET_NULL, related_name="packages")
    path = models.CharField(max_length=1000)  # the database file or metadata file it was read from

    class Meta:
        ordering = ["ecosystem", "name", "version"]
        indexes = [models.Index(fields=["image", "ecosystem", "name"])]

    def __str__(self) -> str:
        return f"{self.ecosystem}:{self.name}@{self.version}"


class SourceImportQuerySet(models.QuerySet):
    def for_user(self, user) -> SourceImportQuerySet:
        return self.filter(owner=user)


class SourceImport(Job, NumberedPerOwner):
    """A git clone that becomes a Source, run by a worker (builds/services/repositories.py: run_git_import) with a
    deadline and a size limit.

    `git_url` is the URL as it may be shown (no password); a URL that carries credentials is kept encrypted in
    `secret_url` only until the clone ends. `source` is set when the clone succeeded.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="source_imports")
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="imports")
    git_url = models.CharField(max_length=2000)
    git_ref = models.CharField(max_length=255, blank=True)
    secret_url = EncryptedTextField(blank=True, help_text="The URL with its credentials, until the clone ends.")
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="imports")
    worker = models.CharField(max_length=255, blank=True)

    objects = SourceImportQuerySet.as_manager()

    class Meta:
        ordering = ["-queued_at", "-id"]
        constraints = [unique_number_per_owner("sourceimport")]

    def __str__(self) -> str:
        return f"import #{self.display_number} of {self.git_url} ({self.status})"
