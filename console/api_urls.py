"""The REST API under /api/v1/: every app's viewsets on one router, plus function endpoints."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from console.accounts.api.views import AccessTokenViewSet

router = SimpleRouter()
router.register("auth/tokens", AccessTokenViewSet, basename="accesstoken")

urlpatterns = [
    path("", include("console.accounts.api.urls")),
    path("", include("console.audit.api.urls")),
    path("", include("console.events.api.urls")),
    path("", include(router.urls)),
    path("", include("builds.api.urls")),
    path("", include("builds.vulnerabilities.api.urls")),
    path("", include("registry.api.urls")),
    path("", include("fleet.api.urls")),
]
