"""What other pages show of the fleet: the image page lists the deployments of its image, the current release
of each app among them and the URL it answers on per host (fleet/services/deployments.py words them). A tag
library, so that builds' page shows the fleet's rows without builds importing the app above it."""

from __future__ import annotations

from typing import Any

from django import template

from fleet.services import deployments

register = template.Library()


@register.simple_tag
def image_deployments(user, image) -> list[dict[str, Any]]:
    """The user's deployments of `image` (an image record), newest first (deployments_of_image)."""
    if not getattr(user, "is_authenticated", False) or not image.image_id:
        return []
    return deployments.deployments_of_image(user, image.image_id)
