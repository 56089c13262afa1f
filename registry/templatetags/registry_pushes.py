"""What the image page shows of the registry: where its image was pushed, for the `docker pull` and
`docker run` commands that fetch it from there. A tag library, so that builds' page shows registry rows without
builds importing the app above it."""

from __future__ import annotations

from django import template

from console.constants import JobStatus
from registry.models import Push

register = template.Library()


@register.simple_tag
def image_pushes(user, image, limit: int = 5) -> list[Push]:
    """The user's successful pushes of `image` (an image record), newest first, one per destination."""
    if not getattr(user, "is_authenticated", False) or not image.image_id:
        return []
    found = (Push.objects.for_user(user).filter(image=image.image_id, status=JobStatus.SUCCEEDED)
             .select_related("registry").order_by("-pk"))
    pushes: dict[str, Push] = {}
    for push in found[:50]:
        pushes.setdefault(push.target, push)
    return list(pushes.values())[:limit]
