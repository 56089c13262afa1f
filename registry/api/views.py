from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response

from console import jobs
from console.api import ErrorSerializer
from console.jobs.logs import log_response, log_schema
from console.pagination import newest_first
from registry import services
from registry.api.serializers import (
    GarbageCollectionRequestSerializer,
    GarbageCollectionSerializer,
    PublicSerializer,
    PullRequestSerializer,
    PullSerializer,
    PushRequestSerializer,
    PushSerializer,
    RegistryAccountSerializer,
    RepositoryDeletedSerializer,
    RepositoryListSerializer,
    RetentionPreviewSerializer,
    RetentionRuleRequestSerializer,
    RetentionRuleSerializer,
    RetentionRunSerializer,
    StorageSerializer,
    TagDeletedSerializer,
    TagListSerializer,
    TestResultSerializer,
)
from registry.models import GarbageCollection, PublicRepository, Pull, Push, RegistryAccount, RetentionRun
from registry.services import browse, gc, retention, usage


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
        parameters=[OpenApiParameter("digest", str, description="Delete only while the tag still points here."),
                    OpenApiParameter("also", str, many=True,
                                     description="Other tags on the same image, to delete together.")],
        responses={200: TagDeletedSerializer, **{code: OpenApiResponse(ErrorSerializer)
                                                 for code in (400, 403, 404, 409, 502)}},
    )
    @action(detail=True, methods=["delete"], url_path=r"repositories/(?P<name>[^?#]+?)/tags/(?P<tag>[^/?#]+)")
    def tag(self, request: Request, pk=None, name: str = "", tag: str = "") -> Response:
        """Delete a tag. The registry deletes images by digest, with every tag on them: when other tags point at
        the same image the answer is 409 naming them, unless each is named in `also` (then they go together).
        403 when the user may not delete there or the registry does not allow deleting."""
        also = request.query_params.getlist("also")
        digest = browse.delete_tag(request.user, self.get_object(), name, tag,
                                   request.query_params.get("digest", ""), request._request, also=also)
        return Response({"name": name, "tag": tag, "digest": digest, "tags": sorted({tag, *also})})

    @extend_schema(methods=["GET"], request=None,
                   responses={200: RetentionRuleSerializer, 404: OpenApiResponse(ErrorSerializer)})
    @extend_schema(methods=["PUT"], request=RetentionRuleRequestSerializer,
                   responses={200: RetentionRuleSerializer, 400: OpenApiResponse(ErrorSerializer)})
    @extend_schema(methods=["DELETE"], request=None, responses={204: None, 404: OpenApiResponse(ErrorSerializer)})
    @action(detail=True, methods=["get", "put", "delete"], url_path=r"repositories/(?P<name>[^?#]+?)/retention")
    def retention(self, request: Request, pk=None, name: str = "") -> Response:
        """The repository's retention rule (the console's registry only): PUT sets it whole, DELETE removes it."""
        account = self.get_object()
        if request.method == "PUT":
            serializer = RetentionRuleRequestSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            rule = retention.set_rule(request.user, account, name, serializer.validated_data, request._request)
            return Response(RetentionRuleSerializer(rule).data)
        if request.method == "DELETE":
            if not retention.remove_rule(request.user, account, name, request._request):
                raise NotFound(f"{name} has no retention rule.")
            return Response(status=status.HTTP_204_NO_CONTENT)
        rule = retention.get_rule(account, name)
        if rule is None:
            raise NotFound(f"{name} has no retention rule.")
        return Response(RetentionRuleSerializer(rule).data)

    @extend_schema(request=None, responses={200: RetentionPreviewSerializer, 400: OpenApiResponse(ErrorSerializer)})
    @action(detail=True, methods=["get"], url_path=r"repositories/(?P<name>[^?#]+?)/retention/preview")
    def retention_preview(self, request: Request, pk=None, name: str = "") -> Response:
        """The dry run: the tags a run would delete and keep now, and the bytes that frees (blobs no remaining
        tag of the registry shares)."""
        plan = retention.preview(self.get_object(), name)
        return Response({"delete": plan.delete, "keep": plan.keep, "frees_bytes": plan.frees_bytes,
                         "reasons": plan.reasons})

    @extend_schema(methods=["GET"], request=None, responses={200: RetentionRunSerializer(many=True)})
    @extend_schema(methods=["POST"], request=None,
                   responses={202: RetentionRunSerializer, 400: OpenApiResponse(ErrorSerializer)})
    @action(detail=True, methods=["get", "post"], url_path=r"repositories/(?P<name>[^?#]+?)/retention/runs")
    def retention_runs(self, request: Request, pk=None, name: str = "") -> Response:
        """The repository's retention runs, newest first (the latest 50); POST applies the rule now."""
        account = self.get_object()
        if request.method == "POST":
            run = retention.trigger_run(request.user, account, name, request=request._request)
            return Response(RetentionRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
        retention.get_rule(account, name)
        runs = RetentionRun.objects.for_user(request.user).filter(repository=name)[:50]
        return Response(RetentionRunSerializer(runs, many=True).data)

    @extend_schema(request=None, responses={200: RepositoryDeletedSerializer, **{
        code: OpenApiResponse(ErrorSerializer) for code in (400, 403, 404, 502)}})
    @action(detail=True, methods=["delete"], url_path=r"repositories/(?P<name>[^?#]+?)")
    def repository(self, request: Request, pk=None, name: str = "") -> Response:
        """Delete a repository: every image its tags point at, through the registry's API."""
        deleted = browse.delete_repository(request.user, self.get_object(), name, request._request)
        return Response({"name": name, "tags": deleted.tags, "digests": deleted.digests})

    @extend_schema(request=None, responses={200: StorageSerializer, 400: OpenApiResponse(ErrorSerializer)})
    @action(detail=True, methods=["get"])
    def storage(self, request: Request, pk=None) -> Response:
        """What your namespace of the console's registry takes, per repository: total and unique bytes."""
        account = self.get_object()
        if not account.is_console:
            return Response({"detail": "Storage is counted for the console's registry only."},
                            status=status.HTTP_400_BAD_REQUEST)
        return Response(StorageSerializer(usage.usage_for(request.user)).data)

    @classmethod
    def get_extra_actions(cls):
        # `repositories/<name>/` matches every longer path too (a name may hold slashes): routed last, so that
        # `.../tags/<tag>/`, `.../retention/` and the others reach their own action first.
        actions = super().get_extra_actions()
        return sorted(actions, key=lambda action: action.__name__ == "repository")

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


@extend_schema_view(
    create=extend_schema(request=GarbageCollectionRequestSerializer,
                         responses={202: GarbageCollectionSerializer, 403: ErrorSerializer, 409: ErrorSerializer}),
)
class GarbageCollectionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Staff only: Distribution's garbage collection of the console's registry, read-only meanwhile."""

    serializer_class = GarbageCollectionSerializer
    permission_classes = [IsAdminUser]
    queryset = GarbageCollection.objects.none()

    def get_queryset(self):
        return newest_first(GarbageCollection.objects.select_related("requested_by"))

    def create(self, request: Request) -> Response:
        serializer = GarbageCollectionRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = gc.trigger_gc(request.user, serializer.validated_data["delete_untagged"], request._request)
        return Response(self.get_serializer(GarbageCollection.objects.get(pk=job.pk)).data,
                        status=status.HTTP_202_ACCEPTED)

    @log_schema()
    @action(detail=True, methods=["get"])
    def log(self, request: Request, pk: str | None = None) -> Response:
        return log_response(self.get_object(), request.query_params)
