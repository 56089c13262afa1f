"""Browser pages of this app (mounted at the site root; each path names its own prefix)."""

from __future__ import annotations

from django.urls import path

from builds.views import builds as build_pages
from builds.views import images, repositories

app_name = "builds"

urlpatterns: list = [
    path("repositories/", repositories.repository_list, name="repository-list"),
    path("repositories/new/", repositories.repository_create, name="repository-create"),
    path("repositories/<int:pk>/", repositories.repository_detail, name="repository-detail"),
    path("repositories/<int:pk>/edit/", repositories.repository_edit, name="repository-edit"),
    path("repositories/<int:pk>/delete/", repositories.repository_delete, name="repository-delete"),
    path("repositories/<int:pk>/sources/upload/", repositories.source_upload, name="source-upload"),
    path("repositories/<int:pk>/sources/git/", repositories.source_from_git, name="source-import-create"),
    path("source-imports/<int:pk>/", repositories.source_import_detail, name="source-import-detail"),
    path("sources/<int:pk>/", repositories.source_detail, name="source-detail"),
    path("sources/<int:pk>/delete/", repositories.source_delete, name="source-delete"),
    path("sources/<int:pk>/build/", build_pages.build_create, name="build-create"),
    path("builds/", build_pages.build_list, name="build-list"),
    path("builds/<int:pk>/", build_pages.build_detail, name="build-detail"),
    path("builds/<int:pk>/cancel/", build_pages.build_cancel, name="build-cancel"),
    path("builds/<int:pk>/rebuild/", build_pages.build_rebuild, name="build-rebuild"),
    path("builds/<int:pk>/debug/", build_pages.build_debug, name="build-debug"),
    path("images/", images.image_list, name="image-list"),
    path("images/tree/", images.image_tree, name="image-tree"),
    path("images/sync/", images.image_sync, name="image-sync"),
    path("images/compare/", images.image_compare, name="image-compare"),
    path("images/<int:pk>/", images.image_detail, name="image-detail"),
    path("images/<int:pk>/analyse/", images.image_analyse, name="image-analyse"),
    path("images/<int:pk>/tag/", images.image_tag, name="image-tag"),
    path("images/<int:pk>/remove/", images.image_remove, name="image-remove"),
]
