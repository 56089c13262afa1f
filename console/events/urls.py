from __future__ import annotations

from django.urls import path

from console.events import views

app_name = "events"

urlpatterns = [
    path("events/", views.event_list, name="event-list"),
    path("webhooks/", views.webhook_list, name="webhook-list"),
    path("webhooks/<int:pk>/", views.webhook_detail, name="webhook-detail"),
    path("webhooks/<int:pk>/delete/", views.webhook_delete, name="webhook-delete"),
    path("webhooks/<int:pk>/toggle/", views.webhook_toggle, name="webhook-toggle"),
    path("webhooks/<int:pk>/deliveries/<int:delivery_id>/redeliver/", views.delivery_redeliver,
         name="delivery-redeliver"),
]
