"""The builds API: trigger, read, follow the log, cancel, rebuild, debug a failed step."""

from __future__ import annotations

from dataclasses import asdict

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from builds.api.serializers import (
    BuildCreateSerializer,
    BuildSerializer,
    DebugRequestSerializer,
    DebugResultSerializer,
)
from builds.filters import BuildFilter
from builds.models import Build, Source
from builds.services import builds as buildservice
from console.api import CREATED_PARAMETERS, ErrorSerializer
from console.constants import JobStatus
from console.jobs.logs import log_response, log_schema
from console.pagination import newest_first

ERROR = OpenApiResponse(ErrorSerializer, description="Refused; `detail` (or the field) says why.")


class BuildViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's builds."""

    serializer_class = BuildSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = BuildFilter

    def get_queryset(self):
        return newest_first(Build.objects.for_user(self.request.user).select_related("node")
                            .prefetch_related("steps", "images"))

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="Part of a tag asked for, or of the repository's name."),
            OpenApiParameter("repository", int, description="The id of one of your repositories."),
            OpenApiParameter("status", str, enum=JobStatus.values),
            OpenApiParameter("tag", str, description="name:tag, or a name for any of its tags."),
            *CREATED_PARAMETERS,
        ],
        responses={200: BuildSerializer(many=True), 400: ERROR},
    )
    def list(self, request: Request, *args, **kwargs) -> Response:
        # The page's ids first, then the rows of just those (build_rows: a few queries, no serializer per row).
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()).values_list("pk", flat=True))
        return self.get_paginated_response(buildservice.build_rows(newest_first(Build.objects.filter(pk__in=page))))

    @extend_schema(request=BuildCreateSerializer, responses={202: BuildSerializer, 400: ERROR})
    def create(self, request: Request) -> Response:
        serializer = BuildCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        source = Source.objects.for_user(request.user).select_related("repository").filter(pk=data.pop("source"))
        if not source.exists():
            return Response({"source": ["There is no such source of yours."]}, status=status.HTTP_400_BAD_REQUEST)
        build = buildservice.trigger_build(request.user, source.get(), buildservice.BuildOptions(**data))
        return Response(BuildSerializer(build).data, status=status.HTTP_202_ACCEPTED)

    @log_schema()
    @action(detail=True, methods=["get"])
    def log(self, request: Request, pk: str | None = None) -> Response:
        return log_response(self.get_object(), request.query_params)

    @extend_schema(request=None, responses={202: BuildSerializer, 409: ERROR})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        build = self.get_object()
        if not buildservice.cancel_build(build):
            return Response({"detail": f"The build is {build.status} already."}, status=status.HTTP_409_CONFLICT)
        build.refresh_from_db()
        return Response(BuildSerializer(build).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: BuildSerializer, 400: ERROR})
    @action(detail=True, methods=["post"])
    def rebuild(self, request: Request, pk: str | None = None) -> Response:
        build = buildservice.rebuild(self.get_object())
        return Response(BuildSerializer(build).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=DebugRequestSerializer, responses={200: DebugResultSerializer, 409: ERROR, 429: ERROR})
    @action(detail=True, methods=["post"])
    def debug(self, request: Request, pk: str | None = None) -> Response:
        build = self.get_object()
        serializer = DebugRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # BuildNotDebuggable (409) and DebugLimitReached (429) are answered by console.api's handler.
        result = buildservice.debug_in_last_good_layer(build, serializer.validated_data["command"])
        return Response(asdict(result))
