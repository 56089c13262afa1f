"""The shape of `GET /api/v1/images/compare/?base=&head=` (builds/services/compare.py answers it), for the
schema: the view returns the service's dict as it is."""

from __future__ import annotations

from rest_framework import serializers

from builds.constants import AnalysisStatus


class ComparedImageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    image_id = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    analysis_status = serializers.ChoiceField(choices=AnalysisStatus.choices)


class ComparedLayerSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The layer's place in its image's history.")
    diff_id = serializers.CharField()
    instruction = serializers.CharField(allow_blank=True, help_text="The Dockerfile instruction that made it.")
    created_by = serializers.CharField(allow_blank=True, help_text="The builder's own text.")
    size = serializers.IntegerField()


class LayersDiffSerializer(serializers.Serializer):
    shared = ComparedLayerSerializer(many=True, help_text="The layers both images start with, by diff_id.")
    added = ComparedLayerSerializer(many=True, help_text="The head's layers after the shared ones.")
    removed = ComparedLayerSerializer(many=True, help_text="The base's layers after the shared ones.")
    shared_size = serializers.IntegerField()
    added_size = serializers.IntegerField()
    removed_size = serializers.IntegerField()


class ValueChangeSerializer(serializers.Serializer):
    base = serializers.JSONField(allow_null=True)
    head = serializers.JSONField(allow_null=True)


class NamedValueChangeSerializer(ValueChangeSerializer):
    name = serializers.CharField()


class PortsDiffSerializer(serializers.Serializer):
    added = serializers.ListField(child=serializers.CharField())
    removed = serializers.ListField(child=serializers.CharField())


class ConfigDiffSerializer(serializers.Serializer):
    env = NamedValueChangeSerializer(many=True, help_text="Variables that differ (null: not set on that side).")
    cmd = ValueChangeSerializer(allow_null=True, help_text="null when the same.")
    entrypoint = ValueChangeSerializer(allow_null=True, help_text="null when the same.")
    user = ValueChangeSerializer(allow_null=True, help_text="null when the same.")
    ports = PortsDiffSerializer(allow_null=True, help_text="Exposed ports; null when the same.")
    labels = NamedValueChangeSerializer(many=True, help_text="Labels that differ (null: not set on that side).")


class FileStateSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="file, dir, symlink, hardlink or other.")
    size = serializers.IntegerField()
    mode = serializers.IntegerField(allow_null=True, help_text="Permission bits; null if not recorded.")
    link = serializers.CharField(allow_null=True, help_text="A link's target; null for other types.")


class FilePathSerializer(FileStateSerializer):
    path = serializers.CharField()


# "from" is a Python keyword: the classes with a field of that name are made by type().
FileChangeSerializer = type("FileChangeSerializer", (serializers.Serializer,), {
    "__module__": __name__, "__doc__": "A path both images have, differently: its state in each.",
    "path": serializers.CharField(), "from": FileStateSerializer(), "to": FileStateSerializer()})


class FileCountsSerializer(serializers.Serializer):
    added = serializers.IntegerField()
    removed = serializers.IntegerField()
    changed = serializers.IntegerField()


class FilesDiffSerializer(serializers.Serializer):
    known = serializers.BooleanField(help_text="False until both images' files are analysed.")
    detail = serializers.CharField(allow_blank=True, help_text="Why the files are not known yet.")
    added = FilePathSerializer(many=True, allow_null=True)
    removed = FilePathSerializer(many=True, allow_null=True)
    changed = FileChangeSerializer(many=True, allow_null=True)
    counts = FileCountsSerializer(allow_null=True, help_text="How many paths each list has in all.")
    truncated = serializers.BooleanField(help_text="A list holds only the first paths of its count.")
    bytes = serializers.IntegerField(allow_null=True, help_text="The head's file bytes minus the base's.")


class PackageSerializer(serializers.Serializer):
    ecosystem = serializers.CharField()
    name = serializers.CharField()
    version = serializers.CharField()


PackageChangeSerializer = type("PackageChangeSerializer", (serializers.Serializer,), {
    "__module__": __name__, "__doc__": "A package both images have, in other versions.",
    "ecosystem": serializers.CharField(), "name": serializers.CharField(),
    "from": serializers.CharField(help_text="The base's version(s), comma-separated."),
    "to": serializers.CharField(help_text="The head's version(s), comma-separated.")})


class PackagesDiffSerializer(serializers.Serializer):
    known = serializers.BooleanField(help_text="False until both images' packages are read.")
    detail = serializers.CharField(allow_blank=True)
    added = PackageSerializer(many=True, allow_null=True)
    removed = PackageSerializer(many=True, allow_null=True)
    changed = PackageChangeSerializer(many=True, allow_null=True)


class ComparisonSerializer(serializers.Serializer):
    base = ComparedImageSerializer()
    head = ComparedImageSerializer()
    packages = PackagesDiffSerializer()
    layers = LayersDiffSerializer()
    files = FilesDiffSerializer()
    config = ConfigDiffSerializer()
