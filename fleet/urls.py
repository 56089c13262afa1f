"""Browser pages of this app (mounted at the site root; each path names its own prefix)."""

from __future__ import annotations

from django.urls import path

from fleet import views

urlpatterns = [
    path("hosts/", views.hosts, name="hosts"),
    path("hosts/<int:pk>/", views.host, name="host"),
    path("hosts/<int:pk>/check/", views.host_check, name="host_check"),
    path("hosts/<int:pk>/delete/", views.host_delete, name="host_delete"),
    path("hosts/<int:pk>/containers/<str:cid>/<str:action>/", views.container_action, name="container_action"),
    path("deployments/", views.deployments, name="deployments"),
    path("deployments/new/", views.deploy, name="deploy"),
    path("deployments/<int:pk>/", views.deployment, name="deployment"),
    path("deployments/<int:pk>/rollback/", views.deployment_rollback, name="deployment_rollback"),
]
