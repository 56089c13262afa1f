from __future__ import annotations

from django.urls import path

from console.audit import views

urlpatterns = [
    path("audit/", views.event_list, name="audit"),
]
