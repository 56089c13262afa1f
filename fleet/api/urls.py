"""REST endpoints of this app, mounted under /api/v1/."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from fleet.api.views import DeploymentViewSet, HostViewSet, PendingReleaseViewSet

router = SimpleRouter()
router.register("hosts", HostViewSet, basename="host")
router.register("deployments", DeploymentViewSet, basename="deployment")
router.register("pending-releases", PendingReleaseViewSet, basename="pendingrelease")

urlpatterns = [path("", include(router.urls))]
