"""REST endpoints of this app, mounted under /api/v1/."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from registry.api.views import GarbageCollectionViewSet, PullViewSet, PushViewSet, RegistryAccountViewSet

router = SimpleRouter()
router.register("registries", RegistryAccountViewSet, basename="registryaccount")
router.register("pushes", PushViewSet, basename="push")
router.register("pulls", PullViewSet, basename="pull")
router.register("registry/gc", GarbageCollectionViewSet, basename="garbagecollection")

urlpatterns = router.urls
