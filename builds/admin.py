from django.contrib import admin

from builds.models import SharedImage


@admin.register(SharedImage)
class SharedImageAdmin(admin.ModelAdmin):
    """Operators mark base images every user may build FROM (see builds/access.py)."""

    list_display = ("reference", "image_id", "shared_at")
    search_fields = ("reference",)
