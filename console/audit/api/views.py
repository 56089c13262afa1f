from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets

from console.api import CREATED_PARAMETERS, ErrorSerializer
from console.audit.api.serializers import AuditEventSerializer
from console.audit.constants import Action
from console.audit.filters import AuditEventFilter
from console.audit.services import events_for
from console.pagination import PagesOrLimitOffset, newest_first


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("action", OpenApiTypes.STR, enum=Action.values, description="Only this action."),
                    OpenApiParameter("q", str, description="Part of the object's name or of the account's."),
                    *CREATED_PARAMETERS],
        responses={200: AuditEventSerializer(many=True),
                   400: OpenApiResponse(ErrorSerializer, description="An unknown action.")},
    )
)
class AuditEventViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The caller's audit events, newest first (staff see everyone's), in pages (or with limit and offset, as
    before every list had pages)."""

    serializer_class = AuditEventSerializer
    pagination_class = PagesOrLimitOffset

    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditEventFilter  # an unknown action: a 400 naming it, raised by the backend

    def get_queryset(self):
        return newest_first(events_for(self.request.user))
