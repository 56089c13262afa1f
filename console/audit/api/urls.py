from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from console.audit.api.views import AuditEventViewSet

router = SimpleRouter()
router.register("audit", AuditEventViewSet, basename="auditevent")

urlpatterns = [path("", include(router.urls))]
