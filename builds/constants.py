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
