from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from console.events.api.views import EventViewSet, WebhookViewSet

router = SimpleRouter()
router.register("events", EventViewSet, basename="event")
router.register("webhooks", WebhookViewSet, basename="webhook")

urlpatterns = [path("", include(router.urls))]
