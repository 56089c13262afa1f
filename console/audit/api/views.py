from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

from console.api import ErrorSerializer
from console.audit.api.serializers import AuditEventSerializer
from console.audit.constants import Action
from console.audit.forms import AuditFilterForm
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

    def get_queryset(self):
        form = AuditFilterForm(self.request.query_params)
        if not form.is_valid():
            raise ValidationError(form.errors)
        return events_for(self.request.user, form.cleaned_data["action"])
