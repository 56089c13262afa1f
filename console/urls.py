from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from console import views
from console.accounts.views import admin_login

urlpatterns = [
    path("", views.home, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("console.accounts.urls")),
    path("api/v1/", include("console.api_urls")),
    path("", include("builds.urls")),
    path("", include("registry.urls")),
    path("", include("fleet.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI from drf-spectacular-sidecar; the split view serves its initialiser as a script (the CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api/docs.html"),
         name="api-docs"),
    path("", include("console.audit.urls")),
    path("", include("console.events.urls")),
    # Before the admin's own URLs, so that /admin/login/ answers 429 when the login throttle refuses (the admin
    # site's login form is throttled in console/accounts/admin.py).
    path("admin/login/", admin_login),
    path("admin/", admin.site.urls),
]

# The console's own error pages, JSON under /api/ (console/views.py).
handler404 = "console.views.page_not_found"
handler403 = "console.views.permission_denied"
handler500 = "console.views.server_error"
