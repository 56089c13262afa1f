from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from console.api import CREATED_PARAMETERS, ErrorSerializer
from console.constants import JobStatus
from console.jobs.logs import log_response, log_schema
from console.pagination import newest_first
from fleet import services
from fleet.api.serializers import (
    ContainerLogsSerializer,
    ContainerSerializer,
    DeploymentRequestSerializer,
    DeploymentSerializer,
    HostSerializer,
    NodeAvailabilitySerializer,
    PendingReleaseSerializer,
    ScaleRequestSerializer,
    SwarmNodeSerializer,
)
from fleet.filters import DeploymentFilter
from fleet.models import Deployment, Host
from fleet.services import deployments, follow, swarm_apps

ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Bad input."),
    404: OpenApiResponse(ErrorSerializer, description="Not yours, or no such thing."),
    503: OpenApiResponse(ErrorSerializer, description="The host's engine does not answer."),
}
CONTAINER_ID = r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}"
# Anything up to the next slash reaches the service, which answers a malformed node id with a 400 (not a 404).
NODE_ID = r"[^/]+"
VERBS = "start|stop|restart|remove"


class HostViewSet(viewsets.ModelViewSet):
    """Your Docker hosts: register, list, change, remove, check; their containers and logs."""

    serializer_class = HostSerializer
    queryset = Host.objects.none()  # for the schema; requests go through get_queryset
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return newest_first(Host.objects.for_user(self.request.user))

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        host = services.create_host(request.user, dict(serializer.validated_data))
        return Response(HostSerializer(host).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        host = self.get_object()
        serializer = self.get_serializer(host, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        host = services.update_host(host, dict(serializer.validated_data))
        return Response(HostSerializer(host).data)

    def perform_destroy(self, instance: Host) -> None:
        services.delete_host(instance)

    @extend_schema(request=None, responses={200: HostSerializer})
    @action(detail=True, methods=["post"])
    def check(self, request: Request, pk: str | None = None) -> Response:
        """Ask the engine now: `up` with its facts, or `down` with the reason."""
        host = services.check_host(self.get_object())
        return Response(HostSerializer(host).data)

    @extend_schema(
        request=NodeAvailabilitySerializer,
        responses={200: SwarmNodeSerializer, **ERRORS, 409: OpenApiResponse(ErrorSerializer, description="The host "
                   "is not a swarm manager."), 502: OpenApiResponse(ErrorSerializer, description="The engine "
                   "refused.")},
    )
    @action(detail=True, methods=["post"], url_path=rf"swarm/nodes/(?P<node_id>{NODE_ID})/availability")
    def node_availability(self, request: Request, pk: str | None = None, node_id: str = "") -> Response:
        """Drain, pause or activate one node of the swarm this host (a manager's engine) manages, like `docker node
        update --availability`; the host is checked again, so that its `swarm` says so."""
        host = self.get_object()
        serializer = NodeAvailabilitySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        node = services.set_node_availability(host, node_id, serializer.validated_data["availability"])
        return Response(SwarmNodeSerializer(node).data)

    @extend_schema(responses={200: ContainerSerializer(many=True), **ERRORS})
    @action(detail=True, methods=["get"])
    def containers(self, request: Request, pk: str | None = None) -> Response:
        """The containers on the host, like `docker ps -a`: all of them on a host whose engine no other user has
        registered, else only those the console deployed for you."""
        page = self.paginate_queryset(services.list_containers(self.get_object(), request.user))
        return self.get_paginated_response(ContainerSerializer(page, many=True).data)

    @extend_schema(request=None, responses={200: ContainerSerializer, 204: None, **ERRORS})
    @action(detail=True, methods=["post"], url_path=rf"containers/(?P<cid>{CONTAINER_ID})/(?P<verb>{VERBS})")
    def container_action(self, request: Request, pk: str | None = None, cid: str = "", verb: str = "") -> Response:
        """Start, stop, restart or remove one container."""
        container = services.container_action(self.get_object(), request.user, cid, verb)
        if container is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(ContainerSerializer(container).data)

    @extend_schema(
        parameters=[OpenApiParameter("tail", int, description="How many of the last lines (default 200).")],
        responses={200: ContainerLogsSerializer, **ERRORS},
    )
    @action(detail=True, methods=["get"], url_path=rf"containers/(?P<cid>{CONTAINER_ID})/logs")
    def container_logs(self, request: Request, pk: str | None = None, cid: str = "") -> Response:
        """The last lines a container wrote to stdout and stderr."""
        host = self.get_object()
        tail = services.clean_tail(request.query_params.get("tail"))
        logs = services.container_logs(host, request.user, cid, tail)
        return Response({"container": cid, "tail": tail, "logs": logs})


class DeploymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Deployments: one image to many hosts at once, each host with its own progress; release history, rollback."""

    serializer_class = DeploymentSerializer
    queryset = Deployment.objects.none()  # for the schema; requests go through get_queryset
    filter_backends = [DjangoFilterBackend]
    filterset_class = DeploymentFilter

    def get_queryset(self):
        return newest_first(Deployment.objects.for_user(self.request.user).prefetch_related("targets"))

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="Part of the app's name or of the image asked for."),
            OpenApiParameter("name", str, description="Only the deployments of this app."),
            OpenApiParameter("status", str, enum=JobStatus.values),
            OpenApiParameter("host", str, description="Only those that went to the host of this name."),
            *CREATED_PARAMETERS,
        ],
        responses={200: DeploymentSerializer(many=True), 400: ERRORS[400]},
    )
    def list(self, request: Request, *args, **kwargs) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=DeploymentRequestSerializer, responses={202: DeploymentSerializer, 400: ERRORS[400]})
    def create(self, request: Request) -> Response:
        serializer = DeploymentRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        deployment = services.create_deployment(request.user, dict(serializer.validated_data))
        return Response(DeploymentSerializer(_fresh(deployment)).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: DeploymentSerializer, 400: ERRORS[400], 404: ERRORS[404]})
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, pk: str | None = None) -> Response:
        """Redeploy the release before this one (its image by id or digest, its settings, its hosts)."""
        try:
            deployment = services.rollback(self.get_object())
        except DjangoValidationError as exc:
            if "detail" not in getattr(exc, "error_dict", {}):
                raise
            return Response({"detail": exc.message_dict["detail"][0]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(DeploymentSerializer(_fresh(deployment)).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: DeploymentSerializer, 400: ERRORS[400], 404: ERRORS[404]})
    @action(detail=True, methods=["post"])
    def redeploy(self, request: Request, pk: str | None = None) -> Response:
        """Deploy again exactly what this deployment asked for (its image by id, its settings, its hosts): a retry
        of a failed deployment, or a fresh start of a release."""
        try:
            deployment = deployments.redeploy(self.get_object())
        except DjangoValidationError as exc:
            if "detail" not in getattr(exc, "error_dict", {}):
                raise
            return Response({"detail": exc.message_dict["detail"][0]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(DeploymentSerializer(_fresh(deployment)).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ScaleRequestSerializer, responses={
        202: DeploymentSerializer, 400: ERRORS[400], 404: ERRORS[404], 503: ERRORS[503],
        409: OpenApiResponse(ErrorSerializer, description="Not the app's current release, the app is being deployed, "
                                                          "or the swarm no longer has its service.")})
    @action(detail=True, methods=["post"])
    def scale(self, request: Request, pk: str | None = None) -> Response:
        """Scale this release's swarm service to `replicas` (0-100): a new release of the app with the same digest
        and settings, whose run changes only the replica count (Swarm rolls no task) and follows until that many
        tasks run."""
        deployment = self.get_object()
        serializer = ScaleRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        scaled = swarm_apps.scale(deployment, serializer.validated_data["replicas"])
        return Response(DeploymentSerializer(_fresh(scaled)).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={
        200: DeploymentSerializer, 400: ERRORS[400], 404: ERRORS[404], 503: ERRORS[503],
        409: OpenApiResponse(ErrorSerializer, description="The app is being deployed, or the swarm has no service of "
                                                          "it that this console made.")})
    @action(detail=True, methods=["post"], url_path="remove-service")
    def remove_service(self, request: Request, pk: str | None = None) -> Response:
        """Remove the app's swarm service (`docker service rm`): its tasks stop on every node; the deployment's
        target then shows the service `removed`."""
        removed = swarm_apps.remove_service(self.get_object())
        return Response(DeploymentSerializer(_fresh(removed)).data)

    @log_schema()
    @action(detail=True, methods=["get"])
    def log(self, request: Request, pk: str | None = None) -> Response:
        """The deployment's log lines from `offset` on."""
        return log_response(self.get_object(), request.query_params, lenient_offset=True)


def _fresh(deployment: Deployment) -> Deployment:
    return get_object_or_404(Deployment.objects.prefetch_related("targets"), pk=deployment.pk)


class PendingReleaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Releases a followed tag asked for, waiting for your approval (and how each ended), newest first."""

    serializer_class = PendingReleaseSerializer

    def get_queryset(self):
        return newest_first(follow.pending_for_user(self.request.user))

    @extend_schema(request=None, responses={202: DeploymentSerializer, 400: ERRORS[400], 404: ERRORS[404],
                                            409: OpenApiResponse(ErrorSerializer, description="Decided already.")})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Deploy the pushed digest as a new release (its trigger names you as the approver)."""
        release = follow.approve(self.get_object(), request.user)
        return Response(DeploymentSerializer(_fresh(release)).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: PendingReleaseSerializer, 404: ERRORS[404],
                                            409: OpenApiResponse(ErrorSerializer, description="Decided already.")})
    @action(detail=True, methods=["post"])
    def decline(self, request: Request, pk: str | None = None) -> Response:
        """Keep what runs: the push is not deployed."""
        return Response(PendingReleaseSerializer(follow.decline(self.get_object(), request.user, request=request)).data)
