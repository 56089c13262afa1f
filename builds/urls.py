"""Browser pages of this app (mounted at the site root; each path names its own prefix)."""

from __future__ import annotations

from django.urls import path

from builds import build_views, image_views, views

urlpatterns: list = [
    path("repositories/", views.repository_list, name="repository_list"),
    path("repositories/new/", views.repository_create, name="repository_create"),
    path("repositories/<int:pk>/", views.repository_detail, name="repository_detail"),
    path("repositories/<int:pk>/edit/", views.repository_edit, name="repository_edit"),
    path("repositories/<int:pk>/delete/", views.repository_delete, name="repository_delete"),
    path("repositories/<int:pk>/sources/upload/", views.source_upload, name="source_upload"),
    path("repositories/<int:pk>/sources/git/", views.source_from_git, name="source_from_git"),
    path("source-imports/<int:pk>/", views.source_import_detail, name="source_import_detail"),
    path("sources/<int:pk>/", views.source_detail, name="source_detail"),
    path("sources/<int:pk>/delete/", views.source_delete, name="source_delete"),
    path("sources/<int:pk>/build/", build_views.build_create, name="build_create"),
    path("builds/", build_views.build_list, name="build_list"),
    path("builds/<int:pk>/", build_views.build_detail, name="build_detail"),
    path("builds/<int:pk>/cancel/", build_views.build_cancel, name="build_cancel"),
    path("builds/<int:pk>/rebuild/", build_views.build_rebuild, name="build_rebuild"),
    path("builds/<int:pk>/debug/", build_views.build_debug, name="build_debug"),
    path("images/", image_views.image_list, name="image_list"),
    path("images/tree/", image_views.image_tree, name="image_tree"),
    path("images/sync/", image_views.image_sync, name="image_sync"),
    path("images/<int:pk>/", image_views.image_detail, name="image_detail"),
    path("images/<int:pk>/analyse/", image_views.image_analyse, name="image_analyse"),
    path("images/<int:pk>/tag/", image_views.image_tag, name="image_tag"),
    path("images/<int:pk>/remove/", image_views.image_remove, name="image_remove"),
]
