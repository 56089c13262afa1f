from __future__ import annotations

from django.db import models


class SourceKind(models.TextChoices):
    ARCHIVE = "archive", "Archive upload"
    GIT = "git", "Git repository"


class ArchiveFormat(models.TextChoices):
    TAR = "tar", "tar"
    TAR_GZ = "tar.gz", "tar.gz"
    TAR_BZ2 = "tar.bz2", "tar.bz2"
    TAR_XZ = "tar.xz", "tar.xz"
    ZIP = "zip", "zip"


class Builder(models.TextChoices):
    """Which of the engine's builders runs a build (README "Builds": BuildKit unless only the classic one will do)."""

    BUILDKIT = "buildkit", "BuildKit"
    CLASSIC = "classic", "Classic builder"


class BuilderChoice(models.TextChoices):
    """What a user asks for: `auto` is BuildKit, or the classic builder where only it will do."""

    AUTO = "auto", "Automatic"
    BUILDKIT = "buildkit", "BuildKit"
    CLASSIC = "classic", "Classic builder"


class StepStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


# Labels the console puts on every image it builds.
LABEL_CREATED = "org.opencontainers.image.created"
LABEL_REVISION = "org.opencontainers.image.revision"
LABEL_SOURCE = "org.opencontainers.image.source"
LABEL_BUILD_ID = "io.console.build-id"

SECRET_MASK = "****"

# The Dockerfile instructions that may commit a layer of files (the others only change the config): builds/layermap.py
# tells by them which history entries of no size may have made a layer.
COMMITTING_INSTRUCTIONS = ("COPY", "ADD", "RUN", "WORKDIR")


class ImageOrigin(models.TextChoices):
    BUILT = "built", "Built here"
    PULLED = "pulled", "Pulled"
    SYNCED = "synced", "Found on the engine"


class AnalysisStatus(models.TextChoices):
    NONE = "none", "Not analysed"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class NodeStatus(models.TextChoices):
    """A build node's health as its heartbeats show it (builds/services/nodes.py)."""

    UP = "up", "Up"
    DOWN = "down", "Down"


# The error of a build whose node stopped sending heartbeats while it ran.
NODE_LOST_ERROR = "The build node {node} was lost (no heartbeat from its worker): rebuild to run it elsewhere."


class PackageEcosystem(models.TextChoices):
    """The kinds of installed packages an image's analysis reads (builds/packagedb.py): each one's value is its purl
    type."""

    DEB = "deb", "Debian package (dpkg)"
    APK = "apk", "Alpine package (apk)"
    PYPI = "pypi", "Python distribution"
    NPM = "npm", "npm package"


class SbomFormat(models.TextChoices):
    """The SBOM documents an image's packages download as (builds/services/packages.py `sbom`)."""

    CYCLONEDX = "cyclonedx", "CycloneDX 1.6 JSON"
    SPDX = "spdx", "SPDX 2.3 JSON"
