"""OSV records as imported, and which of them each analysed image's packages match.

An import (VulnerabilityImport, a job) adds and updates records by their OSV id and drops the ones it marks
withdrawn; each record's `affected[]` entries for the ecosystems the console matches are AffectedPackage rows.
A VulnerabilityMatch is one record matching one package of one image at its installed version; matches are
recomputed for every analysed image by each import, and kept with the import that first found them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from builds.models import Image
from builds.vulnerabilities.constants import ImportKind
from console.constants import JobStatus
from console.jobs import Job


class VulnerabilityImport(Job):
    """One import of OSV data by a staff member: an uploaded zip (stored until the run ends) or a folder on the
    server. It changes nothing unless it succeeds: records and matches are written in one transaction."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="vulnerability_imports")
    kind = models.CharField(max_length=8, choices=ImportKind.choices)
    # The uploaded file's name as given (display only), or the folder's path.
    name = models.CharField(max_length=1000)
    # Where the uploaded zip waits for the worker, in the "vulnerability_imports" storage; "" once the run ended.
    stored_name = models.CharField(max_length=200, blank=True)
    size = models.BigIntegerField(default=0)
    # Figures of a finished run.
    records = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    withdrawn = models.PositiveIntegerField(default=0)
    ecosystems = models.JSONField(default=list, blank=True)
    images = models.PositiveIntegerField(default=0)
    matches = models.PositiveIntegerField(default=0)
    new_matches = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-queued_at", "-id"]

    @classmethod
    def latest(cls) -> VulnerabilityImport | None:
        """The last import that succeeded: "new" matches are the ones it first found."""
        return cls.objects.filter(status=JobStatus.SUCCEEDED).order_by("-finished_at", "-id").first()


class Vulnerability(models.Model):
    """One OSV record (its id, aliases, summary and severity), as the latest import that held it said."""

    osv_id = models.CharField(max_length=255, unique=True)
    aliases = models.JSONField(default=list, blank=True)
    summary = models.CharField(max_length=1000, blank=True)
    # database_specific.severity where the record gives one ("HIGH"), else its first `severity` score
    # ("CVSS_V3 CVSS:3.1/AV:N/..."); "" when it gives none.
    severity = models.CharField(max_length=255, blank=True)
    modified = models.DateTimeField(null=True, blank=True)
    published = models.DateTimeField(null=True, blank=True)
    imported_by = models.ForeignKey(VulnerabilityImport, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")

    class Meta:
        ordering = ["osv_id"]
        verbose_name_plural = "vulnerabilities"

    def __str__(self) -> str:
        return self.osv_id


class AffectedPackage(models.Model):
    """One `affected[]` entry of a record, for an ecosystem the console matches: the package (its name normalised
    as the ecosystem compares names), its ranges [{type, events: [[kind, version]]}] and listed versions."""

    vulnerability = models.ForeignKey(Vulnerability, on_delete=models.CASCADE, related_name="affected")
    ecosystem = models.CharField(max_length=100)
    name = models.CharField(max_length=255)
    ranges = models.JSONField(default=list, blank=True)
    versions = models.JSONField(default=list, blank=True)
    # The entry's own severity (ecosystem_specific / database_specific), "" when it has none.
    severity = models.CharField(max_length=255, blank=True)

    class Meta:
        indexes = [models.Index(fields=["ecosystem", "name"])]

    def __str__(self) -> str:
        return f"{self.vulnerability} in {self.ecosystem}/{self.name}"


class VulnerabilityMatchQuerySet(models.QuerySet):
    def for_user(self, user) -> VulnerabilityMatchQuerySet:
        return self.filter(image__owner=user)


class VulnerabilityMatch(models.Model):
    """A record that one package of an image is affected by, at the version the image has installed."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="vulnerability_matches")
    vulnerability = models.ForeignKey(Vulnerability, on_delete=models.CASCADE, related_name="matches")
    # The OSV ecosystem and the name it matched under (a Debian source package, say), and the image's package.
    ecosystem = models.CharField(max_length=100)
    matched_name = models.CharField(max_length=255)
    package = models.CharField(max_length=255)
    package_type = models.CharField(max_length=8)
    installed_version = models.CharField(max_length=255)
    # The first version that fixes it, "" when the record knows none: a match with one is "fixable".
    fixed_version = models.CharField(max_length=255, blank=True)
    severity = models.CharField(max_length=255, blank=True)
    # The import whose data first found this match for this image (the latest one, for an image analysed after it).
    first_seen_import = models.ForeignKey(VulnerabilityImport, null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="+")
    first_seen_at = models.DateTimeField()

    objects = VulnerabilityMatchQuerySet.as_manager()

    class Meta:
        ordering = ["vulnerability__osv_id", "package", "id"]
        constraints = [models.UniqueConstraint(
            fields=["image", "vulnerability", "package_type", "package", "installed_version"],
            name="unique_vulnerability_match")]
        indexes = [models.Index(fields=["image", "fixed_version"])]

    def __str__(self) -> str:
        return f"{self.vulnerability} in {self.package} {self.installed_version}"
