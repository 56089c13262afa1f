from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from console import views

urlpatterns = [
    path("", views.home, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("console.accounts.urls")),
    path("api/v1/", include("console.api_urls")),
    path("", include("builds.urls")),
    path("", include("registry.urls")),
    path("", include("fleet.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("admin/", admin.site.urls),
]
