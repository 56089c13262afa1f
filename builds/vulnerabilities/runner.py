"""The worker's side of a vulnerability data import (VulnerabilityImport, a job): read the zip or folder within
the limits, store its records and match every analysed image again in one transaction
(builds/vulnerabilities/services.py `apply_import`); a corrupt input fails the run and changes nothing."""

from __future__ import annotations

import logging

from django.utils import timezone

from builds.vulnerabilities import services
from builds.vulnerabilities.constants import ImportKind
from builds.vulnerabilities.models import VulnerabilityImport
from builds.vulnerabilities.osv import (
    CorruptData,
    ImportRefused,
    Limits,
    folder_documents,
    resolve_folder,
    zip_documents,
)
from console import jobs
from console.constants import JobStatus

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 10


class ImportRunner(jobs.JobRunner):
    model = VulnerabilityImport

    def work(self, job: VulnerabilityImport) -> tuple[str, str]:
        limits = Limits.from_settings()
        started = timezone.now()
        # The import's transaction holds its lines back: they are written once it has ended, kept or undone.
        lines: list[str] = []
        try:
            if job.kind == ImportKind.ZIP:
                path = services.stored_upload(job)
                if path is None or not path.is_file():
                    return JobStatus.FAILED, "The uploaded zip is gone from the console's storage: upload it again."
                self.log(job, [f"Reading the uploaded zip {job.name!r} ({job.size} bytes)."])
                documents = zip_documents(path, limits)
            else:
                self.log(job, [f"Reading the OSV JSON files under {job.name}."])
                documents = folder_documents(resolve_folder(job.name), limits)
            with jobs.heartbeats(job, HEARTBEAT_INTERVAL):
                result = services.apply_import(job, documents, limits, progress=lines.append)
        except (CorruptData, ImportRefused) as exc:
            self.log(job, [*lines, "Nothing was changed: the data stays as the last import left it."])
            return JobStatus.FAILED, (exc.message if isinstance(exc, ImportRefused) else str(exc))[:2000]
        finally:
            services.forget_upload(job)
        self.log(job, [*lines, *result.notes,
                       f"{result.records} records read, {result.skipped} skipped, {result.withdrawn} withdrawn; "
                       f"ecosystems: {', '.join(sorted(result.ecosystems)) or 'none the console matches'}.",
                       f"{result.images} analysed images matched again: {result.matches} matches, "
                       f"{result.new_matches} new."])
        again = services.match_images_recorded_since(started)
        if again:
            self.log(job, [f"{again} images analysed during the import matched against it."])
        return JobStatus.SUCCEEDED, ""


def run_import(import_id: int) -> None:
    ImportRunner().run(import_id)
