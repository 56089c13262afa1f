from __future__ import annotations

from rest_framework import serializers

from builds.models import Repository, Source


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
