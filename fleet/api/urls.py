"""REST endpoints of this app, mounted under /api/v1/."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from fleet.api.views import DeploymentViewSet, HostViewSet

router = SimpleRouter()
router.register("hosts", HostViewSet, basename="host")
router.register("deployments", DeploymentViewSet, basename="deployment")

urlpatterns = [path("", include(router.urls))]
