"""The installed packages of an image (dpkg, apk, Python distributions, npm), as its analysis read them from the
layers (builds/packagedb.py), stored as ImagePackage rows, and the SBOMs made of them.

The analysis job (builds/runner/analysis.py) calls `record_packages` once it has stored the layers' files: the
image's packages are replaced all at once, then `builds.signals.packages_recorded` is sent (vulnerability
matching connects to it). Pages and the API read them through `packages_of` / `image_packages`, and download
them as an SBOM (`sbom`: CycloneDX 1.6 JSON through cyclonedx-python-lib, SPDX 2.3 JSON written here).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from builds.constants import AnalysisStatus, PackageEcosystem, SbomFormat
from builds.models import Image, ImagePackage
from builds.services.analysis import NotAnalysed, lock_image
from builds.signals import packages_recorded
from console.errors import DomainError

log = logging.getLogger(__name__)


def packages_of(image: Image) -> QuerySet[ImagePackage]:
    """The image's packages (ecosystem, name, version order); none until its analysis recorded them. Each comes
    with its layer, without the layer's file list (tens of thousands of entries for a distribution's base)."""
    return ImagePackage.objects.filter(image=image).select_related("layer").defer("layer__files")


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
        lock_image(image)
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


# -- reading ----------------------------------------------------------------------------------------------------


class PackagesNotRead(NotAnalysed):
    """The image's packages are not known yet (a 409, as for its files); the message says where its analysis
    stands."""


class BadSbomFormat(DomainError):
    """A format the SBOM export does not write."""

    field = "format"


def _require_read(image: Image) -> None:
    if image.packages_read is None:
        if image.analysis_status == AnalysisStatus.SUCCEEDED:
            raise PackagesNotRead("The image was analysed before packages were read: ask for its analysis again.")
        error = f": {image.analysis_error}" if image.analysis_error else ""
        raise PackagesNotRead(f"The image's packages are not read yet: it is read by its analysis "
                              f"(analysis {image.analysis_status}{error}).")


def image_packages(image: Image, ecosystem: str = "", search: str = "") -> QuerySet[ImagePackage]:
    """The image's packages for the page and the API, of one ecosystem and/or whose name holds `search`.
    Raises PackagesNotRead before its analysis has read them."""
    _require_read(image)
    packages = packages_of(image).order_by("ecosystem", "name", "version", "pk")
    if ecosystem:
        packages = packages.filter(ecosystem=ecosystem)
    if search:
        packages = packages.filter(name__icontains=search)
    return packages


def ecosystem_counts(image: Image) -> list[tuple[str, int]]:
    """(ecosystem label, count) of the image's packages, for the page."""
    labels = dict(PackageEcosystem.choices)
    counts = packages_of(image).values_list("ecosystem").annotate(count=Count("pk")).order_by("ecosystem")
    return [(labels.get(ecosystem, ecosystem), count) for ecosystem, count in counts]


def os_name(image: Image) -> str:
    """The image's operating system as its os-release names it ("" when it has none)."""
    release = image.os_release or {}
    named = release.get("PRETTY_NAME") or " ".join(filter(None, [release.get("NAME"), release.get("VERSION")]))
    return named or release.get("ID", "")


# -- SBOM -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sbom:
    """An SBOM document ready to download."""

    filename: str
    content_type: str
    body: bytes


_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
TOOL_NAME = "console"
TOOL_VERSION = "0.1.0"


def sbom(image: Image, format: str) -> Sbom:
    """The image's SBOM: CycloneDX 1.6 JSON (`cyclonedx`) or SPDX 2.3 JSON (`spdx`), its packages as components
    with their purls and licences. Raises BadSbomFormat (400) or PackagesNotRead (409)."""
    if format not in SbomFormat.values:
        raise BadSbomFormat(f"The SBOM format must be one of: {', '.join(SbomFormat.values)}.")
    _require_read(image)
    packages = list(packages_of(image).order_by("ecosystem", "name", "version", "pk"))
    base = _UNSAFE_FILENAME.sub("_", _image_name(image)).strip("._") or "image"
    if format == SbomFormat.CYCLONEDX:
        return Sbom(f"{base}.cdx.json", "application/vnd.cyclonedx+json", _cyclonedx(image, packages))
    return Sbom(f"{base}.spdx.json", "application/spdx+json", _spdx(image, packages))


def _image_name(image: Image) -> str:
    return image.tags[0] if image.tags else image.image_id.removeprefix("sha256:")[:12]


def _image_version(image: Image) -> str:
    return image.image_id


def _cyclonedx(image: Image, packages: list[ImagePackage]) -> bytes:
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    bom = Bom()
    name = image.tags[0].rsplit(":", 1)[0] if image.tags and ":" in image.tags[0] else _image_name(image)
    root = Component(type=ComponentType.CONTAINER, name=name, version=_image_version(image), bom_ref="image",
                     properties=[Property(name="console:image:tag", value=tag) for tag in image.tags]
                     + _os_properties(image))
    bom.metadata.component = root
    bom.metadata.tools.components.add(Component(type=ComponentType.APPLICATION, name=TOOL_NAME,
                                                version=TOOL_VERSION))
    refs: set[str] = set()
    components = []
    for package in packages:
        ref = package.purl if package.purl not in refs else f"{package.purl}#{package.pk}"
        refs.add(ref)
        properties = [Property(name="console:package:path", value="/" + package.path)]
        if package.layer is not None:
            properties.append(Property(name="console:package:layer", value=str(package.layer.index)))
            if package.layer.diff_id:
                properties.append(Property(name="console:package:layer_diff_id", value=package.layer.diff_id))
        try:
            purl = PackageURL.from_string(package.purl)
        except ValueError:
            purl = None
        component = Component(
            type=ComponentType.LIBRARY, name=package.name, version=package.version, bom_ref=ref, purl=purl,
            licenses=[_cyclonedx_licence(package.licence)] if package.licence else [],
            properties=properties)
        components.append(component)
        bom.components.add(component)
    bom.register_dependency(root, components)
    return JsonV1Dot6(bom).output_as_string(indent=2).encode()


def _os_properties(image: Image):
    from cyclonedx.model import Property

    release = image.os_release or {}
    return [Property(name=f"console:os-release:{key}", value=release[key])
            for key in ("ID", "VERSION_ID", "PRETTY_NAME") if release.get(key)]


@functools.cache
def _spdx_licensing():
    """license-expression's SPDX licensing, built once: it reads the whole licence index (tenths of a second and
    tens of MB each time)."""
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


@functools.lru_cache(maxsize=4096)
def spdx_expression(value: str) -> str:
    """The licence as a valid SPDX license expression, in SPDX's spelling (`mit` -> `MIT`); "" when it is not one
    (`Apache 2.0`, Debian's `GPL-3+`, free text). Cached: an image's packages repeat a few licences."""
    if not value or len(value) > 255:
        return ""
    try:
        parsed = _spdx_licensing().parse(value, validate=True, strict=True, simple=True)
    except Exception:  # noqa: BLE001 (whatever the text, the answer is "not an expression")
        return ""
    return str(parsed) if parsed is not None else ""


def _spdx_licence(value: str) -> str:
    """A licence as SPDX's licenseDeclared: an SPDX license expression, or NOASSERTION."""
    return spdx_expression(value) or "NOASSERTION"


def _cyclonedx_licence(value: str):
    """A licence as CycloneDX has it: an SPDX id, an SPDX expression, or else a licence by name."""
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
    from cyclonedx.spdx import is_supported_id

    expression = spdx_expression(value)
    if expression and is_supported_id(expression):
        return DisjunctiveLicense(id=expression)
    if expression:
        return LicenseExpression(expression)
    return DisjunctiveLicense(name=value)


def _spdx(image: Image, packages: list[ImagePackage]) -> bytes:
    """SPDX 2.3 JSON, as its schema (spdx-spec schemas/spdx-schema.json) gives it: the image is the package the
    document DESCRIBES, and CONTAINS every installed package, each with its purl as an external reference."""
    created = timezone.now().replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    image_ref = "SPDXRef-Image"
    release = image.os_release or {}
    image_package = {
        "SPDXID": image_ref, "name": _image_name(image), "versionInfo": _image_version(image),
        "downloadLocation": "NOASSERTION", "filesAnalyzed": False, "primaryPackagePurpose": "CONTAINER",
        "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION", "copyrightText": "NOASSERTION",
        "checksums": [{"algorithm": "SHA256", "checksumValue": image.image_id.removeprefix("sha256:")}]
        if re.fullmatch(r"sha256:[0-9a-f]{64}", image.image_id) else [],
    }
    if release:
        image_package["comment"] = f"Operating system: {os_name(image)}"
    rows = [image_package]
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                      "relatedSpdxElement": image_ref}]
    for package in packages:
        ref = f"SPDXRef-Package-{package.ecosystem}-{package.pk}"
        where = f"/{package.path}" + (f" (layer {package.layer.index})" if package.layer is not None else "")
        row = {
            "SPDXID": ref, "name": package.name, "versionInfo": package.version,
            "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION", "licenseDeclared": _spdx_licence(package.licence),
            "copyrightText": "NOASSERTION", "sourceInfo": f"read from {where}",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": package.purl}],
        }
        if package.licence and row["licenseDeclared"] == "NOASSERTION":
            row["licenseComments"] = f"Declared as: {package.licence}"
        rows.append(row)
        relationships.append({"spdxElementId": image_ref, "relationshipType": "CONTAINS",
                              "relatedSpdxElement": ref})
    document = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{_image_name(image)} ({image.image_id})",
        "documentNamespace": f"urn:uuid:{uuid.uuid4()}",
        "creationInfo": {"created": created, "creators": [f"Tool: {TOOL_NAME}-{TOOL_VERSION}"]},
        "packages": rows,
        "relationships": relationships,
    }
    return json.dumps(document, indent=2, ensure_ascii=False).encode()
