"""REST endpoints of this app, mounted under /api/v1/."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from builds.api import lint, views

router = SimpleRouter()
router.register("repositories", views.RepositoryViewSet, basename="repository")
router.register("sources", views.SourceViewSet, basename="source")

urlpatterns: list = [
    path("", include(router.urls)),
    path("lint/", lint.lint, name="api-lint"),
]
