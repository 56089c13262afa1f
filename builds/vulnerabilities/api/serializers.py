from __future__ import annotations

from rest_framework import serializers

from builds.vulnerabilities.models import VulnerabilityImport, VulnerabilityMatch


class VulnerabilityImportSerializer(serializers.ModelSerializer):
    class Meta:
        model = VulnerabilityImport
        fields = ["id", "kind", "name", "size", "status", "error", "records", "skipped", "withdrawn", "ecosystems",
                  "images", "matches", "new_matches", "queued_at", "started_at", "finished_at"]
        read_only_fields = fields


class VulnerabilityImportRequestSerializer(serializers.Serializer):
    """Either `file` (multipart: an OSV zip such as osv.dev's <ecosystem>/all.zip) or `folder` (an absolute path on
    the server, inside VULNERABILITY_IMPORT_ROOTS)."""

    file = serializers.FileField(required=False, allow_empty_file=False, use_url=False)
    folder = serializers.CharField(required=False, max_length=1000, trim_whitespace=False)

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("file")) == bool(attrs.get("folder")):
            raise serializers.ValidationError("Give either `file` (an OSV zip) or `folder` (a path on the server).")
        return attrs


class VulnerabilityMatchSerializer(serializers.ModelSerializer):
    """One OSV record that one of the image's packages is affected by."""

    id = serializers.CharField(source="vulnerability.osv_id")
    aliases = serializers.ListField(source="vulnerability.aliases", child=serializers.CharField())
    summary = serializers.CharField(source="vulnerability.summary")
    fixable = serializers.SerializerMethodField()
    new = serializers.SerializerMethodField()

    class Meta:
        model = VulnerabilityMatch
        fields = ["id", "aliases", "summary", "severity", "package", "package_type", "ecosystem", "matched_name",
                  "installed_version", "fixed_version", "fixable", "new", "first_seen_import", "first_seen_at"]
        read_only_fields = fields

    def get_fixable(self, match: VulnerabilityMatch) -> bool:
        return bool(match.fixed_version)

    def get_new(self, match: VulnerabilityMatch) -> bool:
        latest = self.context.get("latest_import")
        return latest is not None and match.first_seen_import_id == latest.pk


class MatchQuerySerializer(serializers.Serializer):
    fixable = serializers.BooleanField(required=False, allow_null=True, default=None)
    new = serializers.BooleanField(required=False, allow_null=True, default=None)
