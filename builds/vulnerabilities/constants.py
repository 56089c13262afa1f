from __future__ import annotations

from django.db import models


class ImportKind(models.TextChoices):
    ZIP = "zip", "OSV zip upload"
    FOLDER = "folder", "Folder of OSV JSON on the server"
