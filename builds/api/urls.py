"""REST endpoints of this app, mounted under /api/v1/."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from builds.api import build_views, image_views, lint, node_views, package_views, views

router = SimpleRouter()
router.register("repositories", views.RepositoryViewSet, basename="repository")
router.register("sources", views.SourceViewSet, basename="source")
router.register("source-imports", views.SourceImportViewSet, basename="source-import")
router.register("builds", build_views.BuildViewSet, basename="build")
router.register("images", image_views.ImageViewSet, basename="image")
router.register("build-nodes", node_views.BuildNodeViewSet, basename="build-node")

urlpatterns: list = [
    path("images/<int:id>/packages/", package_views.ImagePackageList.as_view(), name="image-packages"),
    path("images/<int:id>/sbom/", package_views.ImageSbom.as_view(), name="image-sbom"),
    path("", include(router.urls)),
    path("lint/", lint.lint, name="api-lint"),
]
