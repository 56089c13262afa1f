"""Browser pages of this app (mounted at the site root; each path names its own prefix)."""

from __future__ import annotations

from django.urls import path

from fleet import views

app_name = "fleet"

urlpatterns = [
    path("hosts/", views.hosts, name="host-list"),
    path("hosts/<int:pk>/", views.host, name="host-detail"),
    path("hosts/<int:pk>/check/", views.host_check, name="host-check"),
    path("hosts/<int:pk>/delete/", views.host_delete, name="host-delete"),
    path("hosts/<int:pk>/swarm/nodes/<str:node_id>/availability/", views.node_availability,
         name="node-availability"),
    path("hosts/<int:pk>/containers/<str:cid>/<str:action>/", views.container_action, name="container-action"),
    path("deployments/", views.deployments, name="deployment-list"),
    path("deployments/new/", views.deploy, name="deployment-create"),
    path("deployments/<int:pk>/", views.deployment, name="deployment-detail"),
    path("deployments/<int:pk>/rollback/", views.deployment_rollback, name="deployment-rollback"),
    path("deployments/<int:pk>/service/", views.deployment_timeline, name="deployment-service"),
    path("pending-releases/<int:pk>/approve/", views.pending_release_approve, name="pending-release-approve"),
    path("pending-releases/<int:pk>/decline/", views.pending_release_decline, name="pending-release-decline"),
    path("deployments/<int:pk>/scale/", views.deployment_scale, name="deployment-scale"),
    path("deployments/<int:pk>/remove-service/", views.deployment_remove_service, name="deployment-remove-service"),
]
