from __future__ import annotations

from rest_framework import serializers

from console import jobs
from registry.constants import RegistryKind
from registry.models import Pull, Push, RegistryAccount


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
    """A deleted tag: `digest` is the image deleted with it (and with every other tag on that image)."""

    name = serializers.CharField()
    tag = serializers.CharField()
    digest = serializers.CharField()


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
