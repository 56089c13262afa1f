"""What other pages show of the console's registry (the dashboard shows its address)."""

from __future__ import annotations

from django import template
from django.conf import settings

register = template.Library()


@register.simple_tag
def console_registry_address() -> str:
    """host:port of the console's own registry, as `docker login` and image names use it."""
    return settings.REGISTRY_ADDRESS
