from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from builds.constants import AnalysisStatus, Builder, BuilderChoice
from builds.models import Build, BuildStep, Image, Layer, Repository, Source, SourceImport
from console import jobs
from console.jobs import logs


class RepositorySerializer(serializers.ModelSerializer):
    name = serializers.RegexField(
        r"^[a-z0-9]+(?:[._-][a-z0-9]+)*\Z",
        max_length=100,
        error_messages={"invalid": "Use lower-case letters and digits, separated by '.', '_' or '-'."},
    )

    class Meta:
        model = Repository
        fields = ["id", "name", "description", "created"]
        read_only_fields = ["id", "created"]


class SourceSerializer(serializers.ModelSerializer):
    commit = serializers.CharField(read_only=True, allow_null=True, source="commit_or_none")

    class Meta:
        model = Source
        fields = ["id", "repository", "kind", "sha256", "size", "file_count", "commit", "created",
                  "archive_format", "unpacked_size", "filename", "git_url", "git_ref"]
        read_only_fields = fields


class SourceImportSerializer(serializers.ModelSerializer):
    """A git clone run by a worker: poll it until `status` is final; `source` is the new source once it succeeded."""

    ref = serializers.CharField(source="git_ref", read_only=True)
    log = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = SourceImport
        fields = ["id", "number", "repository", "git_url", "ref", "status", "source", "error", "log", "url",
                  "queued_at", "started_at", "finished_at"]
        read_only_fields = fields

    def get_log(self, job: SourceImport) -> str:
        return jobs.log_text(job)

    def get_url(self, job: SourceImport) -> str:
        return reverse("source-import-detail", args=[job.pk])


class SourceUploadSerializer(serializers.Serializer):
    """Either a multipart `archive`, or JSON `git_url` with an optional `ref`."""

    archive = serializers.FileField(required=False, allow_empty_file=True)
    git_url = serializers.CharField(required=False, max_length=2000)
    ref = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("archive")) == bool(attrs.get("git_url")):
            raise serializers.ValidationError("Send either a multipart `archive` or a JSON `git_url`, not both.")
        return attrs


class ContextQuerySerializer(serializers.Serializer):
    dockerfile = serializers.CharField(required=False, default="Dockerfile", max_length=1000)
    path = serializers.CharField(required=False, default=".", max_length=1000)


class ContextWarningSerializer(serializers.Serializer):
    path = serializers.CharField()
    reason = serializers.CharField()


class ContextSerializer(serializers.Serializer):
    dockerfile = serializers.CharField()
    path = serializers.CharField()
    included = serializers.ListField(child=serializers.CharField())
    excluded = serializers.ListField(child=serializers.CharField())
    file_count = serializers.IntegerField()
    size = serializers.IntegerField()
    warnings = ContextWarningSerializer(many=True)


class BuildStepSerializer(serializers.ModelSerializer):
    duration_ms = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = BuildStep
        fields = ["number", "instruction", "stage", "cached", "layer_id", "duration_ms", "status"]


class BuildCreateSerializer(serializers.Serializer):
    source = serializers.IntegerField()
    dockerfile = serializers.CharField(required=False, default="Dockerfile", max_length=1000)
    path = serializers.CharField(required=False, default=".", max_length=1000)
    tags = serializers.ListField(child=serializers.CharField(max_length=255), required=False, default=list,
                                 max_length=20)
    build_args = serializers.DictField(child=serializers.CharField(allow_blank=True, trim_whitespace=False),
                                       required=False, default=dict)
    secret_args = serializers.ListField(child=serializers.CharField(), required=False, default=list,
                                        help_text="Deprecated: names of build_args passed as secrets instead.")
    secrets = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False), required=False, default=dict,
        write_only=True, help_text="{NAME: value} for RUN --mount=type=secret,id=NAME; never in the image.")
    builder = serializers.ChoiceField(choices=BuilderChoice.choices, required=False, default=BuilderChoice.AUTO,
                                      help_text="auto: BuildKit, or the classic builder for memory or CPU limits.")
    labels = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False, default=dict)
    target = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    no_cache = serializers.BooleanField(required=False, default=False)
    memory_limit = serializers.CharField(required=False, allow_blank=True, default="", max_length=32)
    cpu_shares = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=2)
    cpuset_cpus = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    timeout = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1,
                                       max_value=24 * 3600)


class BuildSerializer(serializers.ModelSerializer):
    steps = BuildStepSerializer(many=True, read_only=True)
    image = serializers.SerializerMethodField()
    debug_command = serializers.CharField(read_only=True)
    queue_position = serializers.SerializerMethodField()
    node = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True,
                                        help_text="The build node that runs (or ran) it, on a build farm.")
    builder = serializers.ChoiceField(choices=Builder.choices, allow_blank=True, read_only=True,
                                      help_text="The builder that runs it; blank until a worker starts a build "
                                                "queued before builders were chosen.")

    class Meta:
        model = Build
        fields = ["id", "number", "status", "source", "repository", "dockerfile", "path", "tags", "build_args",
                  "secret_args", "labels", "target", "no_cache", "memory_limit", "cpu_shares", "cpuset_cpus",
                  "timeout", "steps", "step_count", "image", "image_id", "error", "failed_step", "last_good_layer",
                  "debug_command", "queue_position", "worker", "node", "rebuild_of", "queued_at", "started_at",
                  "finished_at", "secret_names", "requested_builder", "builder", "builder_reason"]
        read_only_fields = fields

    def get_image(self, build) -> int | None:
        # all() reads the list view's prefetch; first() would run a query per build.
        images = list(build.images.all())
        return images[0].pk if images else None

    def get_queue_position(self, build) -> int | None:
        from builds.services.builds import queue_position

        return queue_position(build)


# Every job's log answers the same (console/jobs/logs.py); the names stay importable from here.
LogQuerySerializer, LogSerializer = logs.LogQuerySerializer, logs.LogSerializer


class DebugRequestSerializer(serializers.Serializer):
    command = serializers.CharField(max_length=10_000)


class DebugResultSerializer(serializers.Serializer):
    exit_code = serializers.IntegerField()
    output = serializers.CharField(allow_blank=True)
    timed_out = serializers.BooleanField()


# -- images ------------------------------------------------------------------------------------------------------


class ImageConfigSerializer(serializers.Serializer):
    env = serializers.ListField(child=serializers.CharField())
    cmd = serializers.JSONField(allow_null=True)
    entrypoint = serializers.JSONField(allow_null=True)
    user = serializers.CharField(allow_blank=True)
    workdir = serializers.CharField(allow_blank=True)
    exposed_ports = serializers.ListField(child=serializers.CharField())
    volumes = serializers.ListField(child=serializers.CharField())
    healthcheck = serializers.JSONField(allow_null=True)


class LayerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Layer
        fields = ["index", "diff_id", "created_by", "size", "empty_layer", "created", "build_step"]
        read_only_fields = fields

    def to_representation(self, layer: Layer) -> dict:
        # Written out: the image list serializes thousands of layers, and DRF's field machinery is the cost.
        return {"index": layer.index, "diff_id": layer.diff_id, "created_by": layer.created_by, "size": layer.size,
                "empty_layer": layer.empty_layer,
                "created": layer.created.isoformat().replace("+00:00", "Z") if layer.created else None,
                "build_step": layer.build_step_id}


class ImageSerializer(serializers.ModelSerializer):
    config = ImageConfigSerializer(read_only=True)
    layers = LayerSerializer(many=True, read_only=True)
    # The latest analysis run's (an ImageAnalysis job), "none" before the first.
    analysis_status = serializers.ChoiceField(choices=AnalysisStatus.choices, read_only=True)
    analysis_error = serializers.CharField(read_only=True)

    class Meta:
        model = Image
        fields = ["id", "image_id", "tags", "digests", "size", "created", "architecture", "os", "labels", "config",
                  "layers", "build", "repository", "origin", "recorded", "analysis_status", "analysis_error",
                  "files_size", "wasted_bytes", "efficiency", "os_release", "packages_read"]
        read_only_fields = fields


class ImageTagSerializer(serializers.Serializer):
    repository = serializers.CharField(max_length=255)
    tag = serializers.CharField(max_length=128, required=False, default="latest")


class LayerFileSerializer(serializers.Serializer):
    path = serializers.CharField()
    change = serializers.ChoiceField(choices=["added", "modified", "removed"])
    type = serializers.CharField()
    size = serializers.IntegerField()
    # Recorded for added and modified paths by analyses since image comparison came (older ones lack them).
    mode = serializers.IntegerField(required=False, help_text="Permission bits (added and modified paths).")
    link = serializers.CharField(required=False, help_text="A symbolic or hard link's target.")


class LayerFilesQuerySerializer(serializers.Serializer):
    path = serializers.CharField(required=False, allow_blank=True, default="", max_length=4096, trim_whitespace=False)


class SyncResultSerializer(serializers.Serializer):
    recorded = serializers.ListField(child=serializers.IntegerField(), help_text="Ids of the images recorded.")
    forgotten = serializers.IntegerField(help_text="How many records of images gone from the engine were dropped.")


class TreeLayerSerializer(serializers.Serializer):
    diff_id = serializers.CharField()
    created_by = serializers.CharField(allow_blank=True)
    size = serializers.IntegerField()


class TreeImageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    image_id = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())


class TreeNodeSerializer(serializers.Serializer):
    chain_id = serializers.CharField()
    layers = TreeLayerSerializer(many=True)
    size = serializers.IntegerField()
    images = TreeImageSerializer(many=True)
    children = serializers.ListField(child=serializers.DictField(), help_text="Nodes of the same shape.")
