"""The installed packages of an image (dpkg, apk, Python distributions, npm), as its analysis read them from the
layers (builds/packagedb.py), stored as ImagePackage rows, and the SBOMs made of them.

The analysis job (builds/runner/analysis.py) calls `record_packages` once it has stored the layers' files: the
image's packages are replaced all at once, then `builds.signals.packages_recorded` is sent (vulnerability
matching connects to it). Pages and the API read them through `packages_of`.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from builds.models import Image, ImagePackage
from builds.signals import packages_recorded

log = logging.getLogger(__name__)


def packages_of(image: Image) -> QuerySet[ImagePackage]:
    """The image's packages (ecosystem, name, version order); none until its analysis recorded them."""
    return ImagePackage.objects.filter(image=image).select_related("layer")


def record_packages(image: Image, packages: list, os_release: dict[str, str]) -> int:
    """Replace the image's packages by `packages` (builds.packagedb.FoundPackage, each with the index of its layer
    among the image's non-empty layers) and its os_release; then send `packages_recorded`. Returns the count."""
    layers = [row for row in image.layers.order_by("index") if not row.empty_layer]
    rows = [
        ImagePackage(
            image=image, ecosystem=found.ecosystem, name=found.name[:255], version=found.version[:255],
            source_name=found.source_name[:255], source_version=found.source_version[:255],
            licence=found.licence[:255], purl=found.purl[:1000],
            layer=layers[found.layer] if found.layer is not None and 0 <= found.layer < len(layers) else None,
            path=found.path[:1000],
        )
        for found in packages
    ]
    with transaction.atomic():
        ImagePackage.objects.filter(image=image).delete()
        ImagePackage.objects.bulk_create(rows, batch_size=500)
        now = timezone.now()
        Image.objects.filter(pk=image.pk).update(os_release=os_release, packages_read=now)
    image.os_release, image.packages_read = os_release, now
    packages_recorded.send(sender=Image, image=image)
    return len(rows)


def packages_summary(packages: list, os_release: dict[str, str]) -> str:
    """One line for the analysis log: how many packages of which kind, and the OS."""
    counts: dict[str, int] = {}
    for found in packages:
        counts[found.ecosystem] = counts.get(found.ecosystem, 0) + 1
    kinds = ", ".join(f"{count} {ecosystem}" for ecosystem, count in sorted(counts.items())) or "none"
    system = os_release.get("PRETTY_NAME") or os_release.get("ID") or "not known"
    return f"{len(packages)} packages ({kinds}); operating system: {system}."
