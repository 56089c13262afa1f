"""REST endpoints of vulnerability matching, mounted under /api/v1/."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from builds.vulnerabilities.api import views

router = SimpleRouter()
router.register("vulnerabilities/imports", views.VulnerabilityImportViewSet, basename="vulnerability-import")

urlpatterns: list = [
    path("", include(router.urls)),
    path("images/<int:pk>/vulnerabilities/", views.ImageVulnerabilityList.as_view(), name="image-vulnerabilities"),
]
