from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.pagination import LimitOffsetPagination

from console.api import ErrorSerializer
from console.audit.api.serializers import AuditEventSerializer
from console.audit.constants import Action
from console.audit.filters import AuditEventFilter
from console.audit.services import events_for


class AuditPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("action", OpenApiTypes.STR, enum=Action.values, description="Only this action.")],
        responses={200: AuditEventSerializer(many=True),
                   400: OpenApiResponse(ErrorSerializer, description="An unknown action.")},
    )
)
class AuditEventViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The caller's audit events, newest first (staff see everyone's), paginated with limit and offset."""

    serializer_class = AuditEventSerializer
    pagination_class = AuditPagination

    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditEventFilter  # an unknown action: a 400 naming it, raised by the backend

    def get_queryset(self):
        return events_for(self.request.user)
