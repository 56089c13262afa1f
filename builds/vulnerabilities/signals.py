"""What this app does when builds records an image's packages (builds.signals.packages_recorded)."""

from __future__ import annotations

import logging

from builds.vulnerabilities import services

log = logging.getLogger(__name__)


def match_recorded_image(sender, image, **kwargs) -> None:
    """Match a newly analysed image against the stored records. A failure here must not fail the analysis that
    sent the signal: it is logged, and the next import matches the image again."""
    try:
        services.match_image(image)
    except Exception:
        log.exception("Matching image record %s against the vulnerability data failed", getattr(image, "pk", None))
