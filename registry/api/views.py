from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from console import jobs
from console.api import ErrorSerializer
from console.jobs.logs import log_response, log_schema
from console.pagination import newest_first
from registry import services
from registry.api.serializers import (
    PublicSerializer,
    PullRequestSerializer,
    PullSerializer,
    PushRequestSerializer,
    PushSerializer,
    RegistryAccountSerializer,
    RepositoryListSerializer,
    TagDeletedSerializer,
    TagListSerializer,
    TestResultSerializer,
)
from registry.models import PublicRepository, Pull, Push, RegistryAccount
from registry.services import browse


class RegistryAccountViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's registry accounts; the console's own registry is always among them."""

    serializer_class = RegistryAccountSerializer
    # For the schema only (path parameter types); requests go through get_queryset.
    queryset = RegistryAccount.objects.none()

    def get_queryset(self):
        if self.action == "list":
            return newest_first(services.accounts_for(self.request.user))
        return RegistryAccount.objects.for_user(self.request.user)

    def perform_create(self, serializer) -> None:
        serializer.instance = services.create_account(self.request.user, serializer.validated_data)

    def perform_update(self, serializer) -> None:
        serializer.instance = services.update_account(serializer.instance, serializer.validated_data)

    def perform_destroy(self, instance: RegistryAccount) -> None:
        services.delete_account(instance)

    @extend_schema(request=None, responses={200: TestResultSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk=None) -> Response:
        """Log in as `docker login` would; a refusal is `ok: false` with the registry's own message."""
        ok, detail = services.check_login(self.get_object())
        return Response({"ok": ok, "detail": detail})

    @extend_schema(responses={200: RepositoryListSerializer, 502: OpenApiResponse(ErrorSerializer)})
    @action(detail=True, methods=["get"])
    def repositories(self, request: Request, pk=None) -> Response:
        # A RegistryError is a 502 with its message, answered by console.api's handler.
        names = services.list_repositories(self.get_object())
        return Response({"repositories": names})

    @extend_schema(responses={200: TagListSerializer, 502: OpenApiResponse(ErrorSerializer)})
    @action(detail=True, methods=["get"], url_path=r"repositories/(?P<name>[^?#]+?)/tags")
    def tags(self, request: Request, pk=None, name: str = "") -> Response:
        tags = services.list_tags(self.get_object(), name)
        return Response({"name": name, "tags": tags})

    @extend_schema(
        request=None,
        parameters=[OpenApiParameter("digest", str, description="Delete only while the tag still points here.")],
        responses={200: TagDeletedSerializer, **{code: OpenApiResponse(ErrorSerializer)
                                                 for code in (400, 403, 404, 409, 502)}},
    )
    @action(detail=True, methods=["delete"], url_path=r"repositories/(?P<name>[^?#]+?)/tags/(?P<tag>[^/?#]+)")
    def tag(self, request: Request, pk=None, name: str = "", tag: str = "") -> Response:
        """Delete a tag: the registry deletes the image it points at by digest, with every tag on that image.
        403 when the user may not push there or the registry does not allow deleting."""
        digest = browse.delete_tag(request.user, self.get_object(), name, tag,
                                   request.query_params.get("digest", ""), request._request)
        return Response({"name": name, "tag": tag, "digest": digest})

    @extend_schema(request=None, responses={200: PublicSerializer, 400: OpenApiResponse(ErrorSerializer)})
    @action(detail=True, methods=["put", "delete"], url_path=r"repositories/(?P<name>[^?#]+?)/public")
    def public(self, request: Request, pk=None, name: str = "") -> Response:
        """PUT makes a repository of the console's registry public (anyone may pull), DELETE private again."""
        account = self.get_object()
        if not account.is_console:
            return Response({"detail": "Only repositories of the console's registry can be made public."},
                            status=status.HTTP_400_BAD_REQUEST)
        if request.method == "PUT":
            services.make_public(request.user, name)
        else:
            services.make_private(request.user, name)
        return Response({"name": name, "public": PublicRepository.objects.filter(name=name).exists()})

    # PUT is not offered: PATCH changes what it names and keeps the secret unless a new one is given.
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def update(self, request: Request, *args, **kwargs) -> Response:
        if not kwargs.get("partial"):
            return Response({"detail": "Use PATCH to change an account."}, status=status.HTTP_405_METHOD_NOT_ALLOWED)
        return super().update(request, *args, **kwargs)


class _TransferViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Pushes or pulls: a subclass names the model, its serializers and the service that starts one."""

    model: type
    request_serializer: type

    def get_queryset(self):
        return newest_first(self.model.objects.for_user(self.request.user).select_related("registry"))

    def trigger(self, user, data: dict):
        raise NotImplementedError

    def list(self, request: Request, *args, **kwargs) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        context = {**self.get_serializer_context(), "logs": jobs.log_texts(page)}
        return self.get_paginated_response(self.get_serializer_class()(page, many=True, context=context).data)

    def create(self, request: Request) -> Response:
        serializer = self.request_serializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        job = self.trigger(request.user, serializer.validated_data)
        job = get_object_or_404(self.get_queryset(), pk=job.pk)
        return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)

    @log_schema()
    @action(detail=True, methods=["get"])
    def log(self, request: Request, pk: str | None = None) -> Response:
        """The log lines from `offset` on, as every job's log answers (the job's own `log` has it whole)."""
        return log_response(self.get_object(), request.query_params)


@extend_schema_view(
    create=extend_schema(request=PushRequestSerializer, responses={202: PushSerializer, 400: ErrorSerializer}),
)
class PushViewSet(_TransferViewSet):
    """Pushes: an image of the build engine sent to a registry, run by a worker with per-layer progress."""

    model = Push
    serializer_class = PushSerializer
    request_serializer = PushRequestSerializer
    queryset = Push.objects.none()

    def trigger(self, user, data: dict) -> Push:
        return services.trigger_push(user, data["image"], data["registry"], data["repository"], data["tag"])


@extend_schema_view(
    create=extend_schema(request=PullRequestSerializer, responses={202: PullSerializer, 400: ErrorSerializer}),
)
class PullViewSet(_TransferViewSet):
    """Pulls: an image fetched from a registry onto the build engine, with per-layer progress."""

    model = Pull
    serializer_class = PullSerializer
    request_serializer = PullRequestSerializer
    queryset = Pull.objects.none()

    def trigger(self, user, data: dict) -> Pull:
        return services.trigger_pull(user, data["registry"], data["reference"])
