from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from builds.api.lint import FindingSerializer
from builds.api.serializers import (
    ContextQuerySerializer,
    ContextSerializer,
    RepositorySerializer,
    SourceImportSerializer,
    SourceSerializer,
    SourceUploadSerializer,
)
from builds.filters import SourceImportFilter
from builds.models import Repository, Source, SourceImport
from builds.services import repositories
from builds.services.checks import lint_source
from builds.sources.context import plan_context
from console.api import ErrorSerializer
from console.jobs.logs import log_response, log_schema
from console.pagination import newest_first

BAD_REQUEST = OpenApiResponse(ErrorSerializer, description="The request is refused; `detail` says why.")


class RepositoryViewSet(viewsets.ModelViewSet):
    """The caller's repositories."""

    serializer_class = RepositorySerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return newest_first(Repository.objects.for_user(self.request.user))

    def perform_create(self, serializer: RepositorySerializer) -> None:
        serializer.instance = repositories.create_repository(self.request.user, **serializer.validated_data)

    def perform_update(self, serializer: RepositorySerializer) -> None:
        repositories.update_repository(serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance: Repository) -> None:
        repositories.delete_repository(instance)

    @extend_schema(
        methods=["POST"],
        request={"multipart/form-data": SourceUploadSerializer, "application/json": SourceUploadSerializer},
        responses={201: SourceSerializer, 202: SourceImportSerializer, 400: BAD_REQUEST},
        description="Upload an archive (tar, tar.gz, tar.bz2, tar.xz or zip): 201 with the source. Or name a git "
                    "URL and ref: 202 with the clone job, which a worker runs; poll its `url` until its `status` "
                    "is final, then `source` is the new source's id.",
    )
    @extend_schema(methods=["GET"], responses={200: SourceSerializer(many=True)})
    @action(detail=True, methods=["get", "post"], parser_classes=[MultiPartParser, FormParser, JSONParser])
    def sources(self, request: Request, pk: str | None = None) -> Response:
        repository = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(newest_first(repository.sources.all()))
            return self.get_paginated_response(SourceSerializer(page, many=True).data)
        upload = SourceUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        data = upload.validated_data
        if not data.get("archive"):
            job = repositories.start_git_import(repository, data["git_url"], data.get("ref", ""))
            return Response(SourceImportSerializer(job).data, status=status.HTTP_202_ACCEPTED)
        archive = data["archive"]
        source = repositories.add_archive_source(repository, archive, archive.name or "")
        return Response(SourceSerializer(source).data, status=status.HTTP_201_CREATED)


class SourceViewSet(mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Sources of the caller's repositories."""

    serializer_class = SourceSerializer

    def get_queryset(self):
        return Source.objects.for_user(self.request.user).select_related("repository")

    def perform_destroy(self, instance: Source) -> None:
        repositories.delete_source(instance)

    @extend_schema(
        parameters=[
            OpenApiParameter("dockerfile", str, description="The Dockerfile, relative to the context folder."),
            OpenApiParameter("path", str, description="The context folder inside the source."),
        ],
        responses={200: ContextSerializer, 400: BAD_REQUEST},
    )
    @action(detail=True, methods=["get"])
    def context(self, request: Request, pk: str | None = None) -> Response:
        source = self.get_object()
        query = ContextQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        plan = plan_context(source, query.validated_data["dockerfile"], query.validated_data["path"])
        return Response(plan.as_dict())

    @extend_schema(
        parameters=[
            OpenApiParameter("dockerfile", str, description="The Dockerfile, relative to the context folder."),
            OpenApiParameter("path", str, description="The context folder inside the source."),
        ],
        responses={200: FindingSerializer(many=True), 400: BAD_REQUEST},
    )
    # The findings of one Dockerfile, a few lines each: one answer, as the build form shows them.
    @action(detail=True, methods=["get"], pagination_class=None)
    def lint(self, request: Request, pk: str | None = None) -> Response:
        source = self.get_object()
        query = ContextQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        findings = lint_source(source, query.validated_data["dockerfile"], query.validated_data["path"])
        return Response(FindingSerializer(findings, many=True).data)




class SourceImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's git clones: each a job a worker runs, whose `source` appears once it succeeded."""

    serializer_class = SourceImportSerializer
    queryset = SourceImport.objects.none()
    filter_backends = [DjangoFilterBackend]
    filterset_class = SourceImportFilter

    def get_queryset(self):
        return newest_first(SourceImport.objects.for_user(self.request.user))

    @extend_schema(parameters=[OpenApiParameter("repository", int)])
    def list(self, request: Request, *args, **kwargs) -> Response:
        return super().list(request, *args, **kwargs)

    @log_schema()
    @action(detail=True, methods=["get"])
    def log(self, request: Request, pk: str | None = None) -> Response:
        return log_response(self.get_object(), request.query_params)
