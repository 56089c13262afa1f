"""Browser pages of this app (mounted at the site root; each path names its own prefix)."""

from __future__ import annotations

from django.urls import path

from builds import build_views, image_views, views

app_name = "builds"

urlpatterns: list = [
    path("repositories/", views.repository_list, name="repository-list"),
    path("repositories/new/", views.repository_create, name="repository-create"),
    path("repositories/<int:pk>/", views.repository_detail, name="repository-detail"),
    path("repositories/<int:pk>/edit/", views.repository_edit, name="repository-edit"),
    path("repositories/<int:pk>/delete/", views.repository_delete, name="repository-delete"),
    path("repositories/<int:pk>/sources/upload/", views.source_upload, name="source-upload"),
    path("repositories/<int:pk>/sources/git/", views.source_from_git, name="source-import-create"),
    path("source-imports/<int:pk>/", views.source_import_detail, name="source-import-detail"),
    path("sources/<int:pk>/", views.source_detail, name="source-detail"),
    path("sources/<int:pk>/delete/", views.source_delete, name="source-delete"),
    path("sources/<int:pk>/build/", build_views.build_create, name="build-create"),
    path("builds/", build_views.build_list, name="build-list"),
    path("builds/<int:pk>/", build_views.build_detail, name="build-detail"),
    path("builds/<int:pk>/cancel/", build_views.build_cancel, name="build-cancel"),
    path("builds/<int:pk>/rebuild/", build_views.build_rebuild, name="build-rebuild"),
    path("builds/<int:pk>/debug/", build_views.build_debug, name="build-debug"),
    path("images/", image_views.image_list, name="image-list"),
    path("images/tree/", image_views.image_tree, name="image-tree"),
    path("images/sync/", image_views.image_sync, name="image-sync"),
    path("images/<int:pk>/", image_views.image_detail, name="image-detail"),
    path("images/<int:pk>/analyse/", image_views.image_analyse, name="image-analyse"),
    path("images/<int:pk>/tag/", image_views.image_tag, name="image-tag"),
    path("images/<int:pk>/remove/", image_views.image_remove, name="image-remove"),
]
