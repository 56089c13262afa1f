from __future__ import annotations

from rest_framework import serializers

from console import jobs
from registry.constants import RegistryKind
from registry.models import GarbageCollection, Pull, Push, RegistryAccount, RetentionRule, RetentionRun


class RegistryAccountSerializer(serializers.ModelSerializer):
    """A registry account; `secret` is write-only: answers only say whether one is stored (`has_secret`)."""

    kind = serializers.ChoiceField(choices=RegistryKind.choices)
    url = serializers.CharField(max_length=255, required=False, allow_blank=True,
                                help_text="A generic registry's URL; filled in for the other kinds.")
    username = serializers.CharField(max_length=255, required=False, allow_blank=True)
    secret = serializers.CharField(write_only=True, required=False, allow_blank=True, trim_whitespace=False,
                                   style={"input_type": "password"}, help_text="The password or token; write-only.")
    ca_certificate = serializers.CharField(required=False, allow_blank=True)
    has_secret = serializers.BooleanField(read_only=True)
    index = serializers.CharField(source="endpoint.index", read_only=True,
                                  help_text="What image references start with: `<index>/<repository>:<tag>`.")
    api_url = serializers.CharField(source="endpoint.api_url", read_only=True)

    class Meta:
        model = RegistryAccount
        fields = ["id", "name", "kind", "url", "username", "secret", "has_secret", "ca_certificate", "index",
                  "api_url", "created", "updated"]
        read_only_fields = ["id", "created", "updated"]


class TestResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    detail = serializers.CharField()


class RepositoryListSerializer(serializers.Serializer):
    repositories = serializers.ListField(child=serializers.CharField())


class TagListSerializer(serializers.Serializer):
    name = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())


class TagDeletedSerializer(serializers.Serializer):
    """A deleted tag: `digest` is the image deleted with it; `tags` every tag that went (the tag and `also`)."""

    name = serializers.CharField()
    tag = serializers.CharField()
    digest = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())


class RepositoryDeletedSerializer(serializers.Serializer):
    name = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    digests = serializers.ListField(child=serializers.CharField())


class RetentionRuleSerializer(serializers.ModelSerializer):
    """A repository's retention rule; `keep_younger_than` is in days, patterns are globs or `re:<RE2>`."""

    class Meta:
        model = RetentionRule
        fields = ["repository", "keep_last", "keep_matching", "keep_younger_than", "protect", "created", "updated"]
        read_only_fields = fields


class RetentionRuleRequestSerializer(serializers.Serializer):
    keep_last = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    keep_matching = serializers.ListField(child=serializers.CharField(), required=False)
    keep_younger_than = serializers.IntegerField(required=False, allow_null=True, min_value=0,
                                                 help_text="Days.")
    protect = serializers.ListField(child=serializers.CharField(), required=False)


class RetentionPreviewSerializer(serializers.Serializer):
    delete = serializers.ListField(child=serializers.CharField())
    keep = serializers.ListField(child=serializers.CharField())
    frees_bytes = serializers.IntegerField()
    reasons = serializers.DictField(child=serializers.CharField(), help_text="Why each kept tag is kept.")


class RetentionRunSerializer(serializers.ModelSerializer):
    log = serializers.SerializerMethodField()

    class Meta:
        model = RetentionRun
        fields = ["id", "status", "repository", "scheduled", "deleted", "kept", "frees_bytes", "error", "log",
                  "queued_at", "started_at", "finished_at"]
        read_only_fields = fields

    def get_log(self, job) -> str:
        return jobs.log_text(job)


class PublicSerializer(serializers.Serializer):
    name = serializers.CharField()
    public = serializers.BooleanField()


class LayerSerializer(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.CharField()
    current = serializers.IntegerField()
    total = serializers.IntegerField()
    # Older rows have no `done`: read as not done.
    done = serializers.BooleanField(default=False, help_text="Pushed, pulled or already there.")


class TransferSerializer(serializers.ModelSerializer):
    layers = LayerSerializer(many=True, read_only=True)
    log = serializers.SerializerMethodField()

    def get_log(self, job) -> str:
        # A list's page reads its jobs' logs in one query (TransferViewSet.list) and passes them here.
        logs = self.context.get("logs")
        return logs[job.pk] if logs is not None and job.pk in logs else jobs.log_text(job)


class PushSerializer(TransferSerializer):
    class Meta:
        model = Push
        fields = ["id", "number", "status", "image", "registry", "repository", "tag", "layers", "digest", "error",
                  "log", "queued_at", "started_at", "finished_at"]
        read_only_fields = fields


class PullSerializer(TransferSerializer):
    class Meta:
        model = Pull
        fields = ["id", "number", "status", "registry", "reference", "layers", "digest", "image_id", "error", "log",
                  "queued_at", "started_at", "finished_at"]
        read_only_fields = fields


class _AccountField(serializers.PrimaryKeyRelatedField):
    """A registry account of the caller's, by id; someone else's is "does not exist" like any unknown id."""

    def get_queryset(self):
        from registry.services import accounts_for

        return accounts_for(self.context["request"].user)


class PushRequestSerializer(serializers.Serializer):
    image = serializers.CharField(max_length=255, help_text="An image reference or id on the build engine.")
    registry = _AccountField(queryset=RegistryAccount.objects.all())
    repository = serializers.CharField(max_length=255)
    tag = serializers.CharField(max_length=128, required=False, default="latest")


class PullRequestSerializer(serializers.Serializer):
    registry = _AccountField(queryset=RegistryAccount.objects.all())
    reference = serializers.CharField(max_length=400, help_text="`<repository>[:tag]` or `<repository>@<digest>`.")


class RepositoryUsageSerializer(serializers.Serializer):
    name = serializers.CharField()
    tags = serializers.IntegerField()
    total_bytes = serializers.IntegerField()
    unique_bytes = serializers.IntegerField(help_text="Blobs no tag of another repository references.")


class StorageSerializer(serializers.Serializer):
    """What the user's namespace of the console's registry takes; `unique_bytes`: blobs no other user's tag
    references (what deleting it all frees)."""

    namespace = serializers.CharField()
    total_bytes = serializers.IntegerField()
    unique_bytes = serializers.IntegerField()
    repositories = RepositoryUsageSerializer(many=True)


class GarbageCollectionSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    log = serializers.SerializerMethodField()

    class Meta:
        model = GarbageCollection
        fields = ["id", "status", "delete_untagged", "freed_bytes", "bytes_before", "bytes_after", "requested_by",
                  "error", "log", "queued_at", "started_at", "finished_at"]
        read_only_fields = fields

    def get_log(self, job) -> str:
        return jobs.log_text(job)


class GarbageCollectionRequestSerializer(serializers.Serializer):
    delete_untagged = serializers.BooleanField(default=False, help_text="Also delete manifests no tag points at.")
