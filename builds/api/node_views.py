"""The build farm's nodes, for administrators (staff): list them with their load, drain and undrain them."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response

from builds.models import BuildNode
from builds.services import builds as buildservice
from builds.services import nodes
from console.pagination import newest_first


class BuildNodeSerializer(serializers.ModelSerializer):
    running_builds = serializers.IntegerField(source="running", read_only=True,
                                              help_text="Builds running on the node now.")
    assigned_builds = serializers.IntegerField(source="assigned", read_only=True,
                                               help_text="Builds handed to the node that have not started yet.")
    available = serializers.SerializerMethodField(help_text="Up, healthy, fresh heartbeat and not drained.")

    class Meta:
        model = BuildNode
        fields = ["id", "name", "engine_url", "queue", "worker", "status", "drained", "available", "capacity",
                  "running_builds", "assigned_builds", "engine_ok", "engine_error", "load", "free_disk",
                  "base_images", "registered_at", "heartbeat_at"]
        read_only_fields = fields

    def get_available(self, node: BuildNode) -> bool:
        return buildservice.is_available(node)


class BuildNodeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Build nodes: an engine and the worker bound to it. Staff only; everyone else is answered 403."""

    serializer_class = BuildNodeSerializer
    permission_classes = [IsAdminUser]

    def get_queryset(self):
        return newest_first(nodes.nodes_for_listing())

    @extend_schema(request=None, responses={200: BuildNodeSerializer})
    @action(detail=True, methods=["post"])
    def drain(self, request: Request, pk: str | None = None) -> Response:
        """The node finishes what it has and gets no new builds."""
        nodes.set_drained(self.get_object(), True)
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(request=None, responses={200: BuildNodeSerializer})
    @action(detail=True, methods=["post"])
    def undrain(self, request: Request, pk: str | None = None) -> Response:
        """The node takes builds again."""
        nodes.set_drained(self.get_object(), False)
        return Response(self.get_serializer(self.get_object()).data)
