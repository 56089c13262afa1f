"""Browser pages of this app (mounted at the site root; each path names its own prefix)."""

from __future__ import annotations

from django.urls import path

from registry import notify_view, token_view, views

app_name = "registry"

urlpatterns = [
    path("registry/token/", token_view.token, name="token-issue"),
    path("registry/notifications/", notify_view.notifications, name="notifications"),
    path("registries/", views.registry_list, name="registry-list"),
    path("registries/new/", views.registry_create, name="registry-create"),
    path("registries/<int:pk>/", views.registry_detail, name="registry-detail"),
    path("registries/<int:pk>/edit/", views.registry_edit, name="registry-edit"),
    path("registries/<int:pk>/delete/", views.registry_delete, name="registry-delete"),
    path("registries/<int:pk>/test/", views.registry_test, name="registry-test"),
    path("registries/<int:pk>/open/", views.registry_open, name="registry-open"),
    path("registries/<int:pk>/repositories/<path:name>/tags/", views.registry_tags, name="registry-tags"),
    path("registries/<int:pk>/repositories/<path:name>/tags/<str:tag>/delete/", views.registry_tag_delete,
         name="registry-tag-delete"),
    path("registries/<int:pk>/repositories/<path:name>/delete/", views.registry_repository_delete,
         name="registry-repository-delete"),
    path("registries/<int:pk>/repositories/<path:name>/retention/", views.registry_retention,
         name="registry-retention"),
    path("registries/<int:pk>/repositories/<path:name>/public/", views.registry_publish, name="registry-publish"),
    path("registry/gc/", views.gc_list, name="gc-list"),
    path("registry/gc/<int:pk>/", views.gc_detail, name="gc-detail"),
    path("pushes/new/", views.push_create, name="push-create"),
    path("pushes/<int:pk>/", views.push_detail, name="push-detail"),
    path("pulls/new/", views.pull_create, name="pull-create"),
    path("pulls/<int:pk>/", views.pull_detail, name="pull-detail"),
]
