from __future__ import annotations

from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from console.api import CREATED_PARAMETERS, ErrorSerializer
from console.events import services
from console.events.api.serializers import DeliverySerializer, EventSerializer, WebhookSerializer
from console.events.constants import EventKind
from console.events.filters import EventFilter
from console.pagination import newest_first


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("kind", OpenApiTypes.STR, enum=EventKind.values, description="Only this kind."),
                    OpenApiParameter("q", str, description="Part of the repository's name."),
                    *CREATED_PARAMETERS],
        responses={200: EventSerializer(many=True),
                   400: OpenApiResponse(ErrorSerializer, description="An unknown kind.")},
    )
)
class EventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's own events, newest first: pushes and deletes in the console's registry, and the builds,
    pushes, pulls and deployments that ended."""

    serializer_class = EventSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = EventFilter

    def get_queryset(self):
        return newest_first(services.events_for(self.request.user))


class WebhookViewSet(viewsets.ModelViewSet):
    """The caller's webhooks: each event it names is POSTed there as JSON, signed with its secret."""

    serializer_class = WebhookSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return newest_first(services.webhooks_for(self.request.user))

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.create_webhook(
            self.request.user, url=data["url"], events=data["events"], secret=data["secret"],
            repository=data.get("repository", ""), active=data.get("active", True))

    def perform_update(self, serializer):
        serializer.instance = services.update_webhook(serializer.instance, self.request.user,
                                                      dict(serializer.validated_data))

    def perform_destroy(self, instance):
        services.delete_webhook(instance)

    @extend_schema(responses={200: DeliverySerializer(many=True)})
    @action(detail=True, methods=["get"], url_path="deliveries")
    def deliveries(self, request, pk=None):
        """The webhook's deliveries, newest first, each with its attempts."""
        webhook = self.get_object()
        page = self.paginate_queryset(newest_first(services.deliveries_for(webhook)))
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)

    @extend_schema(responses={200: DeliverySerializer})
    @action(detail=True, methods=["get"], url_path=r"deliveries/(?P<delivery_id>\d+)")
    def delivery(self, request, pk=None, delivery_id=None):
        """One delivery and its attempts."""
        delivery = get_object_or_404(services.deliveries_for(self.get_object()), pk=delivery_id)
        return Response(DeliverySerializer(delivery).data)

    @extend_schema(request=None, responses={202: DeliverySerializer,
                                            409: OpenApiResponse(ErrorSerializer, description="Still being tried.")})
    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>\d+)/redeliver")
    def redeliver(self, request, pk=None, delivery_id=None):
        """Send that delivery's event again, as a new delivery (queued: 202)."""
        delivery = get_object_or_404(services.deliveries_for(self.get_object()), pk=delivery_id)
        again = services.redeliver(delivery)
        return Response(DeliverySerializer(again).data, status=status.HTTP_202_ACCEPTED)
