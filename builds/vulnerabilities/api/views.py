"""The vulnerability API: staff import OSV data; users read their own images' matches."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response

from builds.vulnerabilities import services
from builds.vulnerabilities.api.serializers import (
    MatchQuerySerializer,
    VulnerabilityImportRequestSerializer,
    VulnerabilityImportSerializer,
    VulnerabilityMatchSerializer,
)
from console.api import ErrorSerializer
from console.jobs.logs import log_response, log_schema
from console.pagination import newest_first

ERROR = OpenApiResponse(ErrorSerializer, description="Refused; `detail` (or the field) says why.")


class VulnerabilityImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Imports of OSV data (staff only): an uploaded zip or a folder on the server, each a background run."""

    serializer_class = VulnerabilityImportSerializer
    permission_classes = [IsAdminUser]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        return newest_first(services.imports_for(self.request.user))

    @extend_schema(request={"multipart/form-data": VulnerabilityImportRequestSerializer,
                            "application/json": VulnerabilityImportRequestSerializer},
                   responses={202: VulnerabilityImportSerializer, 400: ERROR, 403: ERROR, 409: ERROR})
    def create(self, request: Request) -> Response:
        body = VulnerabilityImportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if body.validated_data.get("file"):
            run = services.request_zip_import(request.user, body.validated_data["file"])
        else:
            run = services.request_folder_import(request.user, body.validated_data["folder"])
        run.refresh_from_db()
        return Response(VulnerabilityImportSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @log_schema(responses={404: ERROR})
    @action(detail=True, methods=["get"])
    def log(self, request: Request, pk: str | None = None) -> Response:
        return log_response(self.get_object(), request.query_params)


class ImageVulnerabilityList(generics.ListAPIView):
    """The OSV records that the image's packages are affected by (the caller's own images only)."""

    serializer_class = VulnerabilityMatchSerializer

    def get_queryset(self):
        image = services.image_for(self.request.user, self.kwargs["pk"])
        query = MatchQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return services.filter_matches(services.matches_of(image), fixable=query.validated_data["fixable"],
                                       new=query.validated_data["new"], latest=self.latest)

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "latest_import": self.latest}

    @extend_schema(
        parameters=[OpenApiParameter("fixable", bool, description="true: only matches with a fixed version; "
                                                                  "false: only those without."),
                    OpenApiParameter("new", bool, description="true: only matches the latest import found first.")],
        responses={200: VulnerabilityMatchSerializer(many=True), 400: ERROR, 404: ERROR},
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        self.latest = services.latest_import()
        return super().get(request, *args, **kwargs)
