"""Which OSV ecosystem, name and version an image's package goes by, and which version order reads it.

- deb: "Debian:<major of VERSION_ID>" when /etc/os-release says ID=debian; OSV's Debian records are per source
  package, so the name is the package's `source_name` (its own name when it is its own source) and the version
  its `source_version` (else its version); dpkg order.
- apk: "Alpine:v<major>.<minor>" when ID=alpine; the origin (`source_name`) or the name; apk order.
- pypi: "PyPI", the name normalised as PEP 503 says (lower case, runs of `-_.` as one `-`); PEP 440.
- npm: "npm", the name as it is; semver.
An image whose os-release names another distribution (or no version) has no OSV ecosystem for its deb or apk
packages: nothing is matched rather than a guess made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from builds.vulnerabilities.versions import APK, DPKG, PEP440, SEMVER

# OSV ecosystem names (as `affected[].package.ecosystem` writes them) that the console matches, by prefix.
DEBIAN = "Debian"
ALPINE = "Alpine"
PYPI = "PyPI"
NPM = "npm"
SUPPORTED = (DEBIAN, ALPINE, PYPI, NPM)

_PEP503 = re.compile(r"[-_.]+")
_MAJOR = re.compile(r"^(\d+)")
_MAJOR_MINOR = re.compile(r"^(\d+)\.(\d+)")


@dataclass(frozen=True)
class PackageKey:
    ecosystem: str
    name: str
    version: str
    order: str


def base_ecosystem(ecosystem: str) -> str:
    """"Debian:12" -> "Debian"; "PyPI" -> "PyPI"."""
    return ecosystem.split(":", 1)[0]


def order_of(ecosystem: str) -> str | None:
    """The version order of an OSV ecosystem the console matches; None for any other."""
    return {DEBIAN: DPKG, ALPINE: APK, PYPI: PEP440, NPM: SEMVER}.get(base_ecosystem(ecosystem))


def normalise_name(ecosystem: str, name: str) -> str:
    """The name as matching compares it: PyPI's PEP 503 form, every other as written."""
    if ecosystem == PYPI:
        return _PEP503.sub("-", name).lower()
    return name


def distribution_ecosystem(kind: str, os_release: dict) -> str | None:
    """The OSV ecosystem of an image's deb or apk packages from its os-release; None when it is not known."""
    release = os_release if isinstance(os_release, dict) else {}
    distribution = str(release.get("ID") or "").strip().lower()
    version = str(release.get("VERSION_ID") or "").strip()
    if kind == "deb" and distribution == "debian":
        major = _MAJOR.match(version)
        return f"{DEBIAN}:{int(major.group(1))}" if major else None
    if kind == "apk" and distribution == "alpine":
        major_minor = _MAJOR_MINOR.match(version)
        if major_minor:
            return f"{ALPINE}:v{int(major_minor.group(1))}.{int(major_minor.group(2))}"
    return None


def package_key(package, os_release: dict) -> PackageKey | None:
    """The OSV key of one ImagePackage (ecosystem, name, version, order), or None when it has none."""
    kind = package.ecosystem
    if kind in ("deb", "apk"):
        ecosystem = distribution_ecosystem(kind, os_release)
        if ecosystem is None:
            return None
        name = package.source_name or package.name
        version = (package.source_version or package.version) if kind == "deb" else package.version
        return PackageKey(ecosystem, name, version, DPKG if kind == "deb" else APK)
    if kind == "pypi":
        return PackageKey(PYPI, normalise_name(PYPI, package.name), package.version, PEP440)
    if kind == "npm":
        return PackageKey(NPM, package.name, package.version, SEMVER)
    return None
