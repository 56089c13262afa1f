"""What the image page shows of vulnerability matching: the OSV records its packages are affected by. A tag
library, so that builds' page shows this app's rows without builds importing it."""

from __future__ import annotations

from dataclasses import dataclass, field

from django import template

from builds.vulnerabilities import services
from builds.vulnerabilities.models import VulnerabilityImport, VulnerabilityMatch

register = template.Library()

# The page lists at most this many matches (fixable ones first); the API pages through all of them.
SHOWN = 200


@dataclass
class ImageVulnerabilities:
    analysed: bool
    latest: VulnerabilityImport | None
    count: int = 0
    fixable: int = 0
    new: int = 0
    matches: list[VulnerabilityMatch] = field(default_factory=list)
    new_ids: set[int] = field(default_factory=set)


@register.simple_tag
def image_vulnerabilities(user, image) -> ImageVulnerabilities:
    """The image's matches for the page, when `user` owns the image (the page's view decided so already)."""
    latest = services.latest_import()
    if not getattr(user, "is_authenticated", False) or image.owner_id != user.pk:
        return ImageVulnerabilities(analysed=False, latest=latest)
    matches = services.matches_of(image)
    shown = _ordered(matches)
    result = ImageVulnerabilities(analysed=image.packages_read is not None, latest=latest, count=matches.count(),
                                  fixable=services.filter_matches(matches, fixable=True).count(), matches=shown)
    if latest is not None:
        result.new = services.filter_matches(matches, new=True, latest=latest).count()
        result.new_ids = {match.pk for match in shown if match.first_seen_import_id == latest.pk}
    return result


def _ordered(matches) -> list[VulnerabilityMatch]:
    fixable = list(services.filter_matches(matches, fixable=True).order_by("vulnerability__osv_id", "package")[:SHOWN])
    rest = list(services.filter_matches(matches, fixable=False).order_by("vulnerability__osv_id", "package")
                [:SHOWN - len(fixable)])
    return fixable + rest
