"""The worker's side of an image's file analysis: stream the image from the engine that holds it through
`analyse_saved_image` and store what each layer changes (builds/services/analysis.py), as a job."""

from __future__ import annotations

import logging

from builds.layerfiles import LayerAnalysisError, analyse_saved_image
from builds.models import ImageAnalysis
from builds.services.analysis import LayerMappingMismatch, queued_analysis_of, store_analysis
from builds.services.packages import packages_summary, record_packages
from console import jobs
from console.constants import JobStatus
from console.engine import Engine, EngineError
from console.engine.images import export_image

log = logging.getLogger(__name__)

# An analysis reads the whole image: allow the engine as long as a big one takes to start sending it.
ANALYSIS_ENGINE_TIMEOUT = 600
# The export is one long read: a thread sends the job's heartbeat meanwhile.
HEARTBEAT_INTERVAL = 10


class AnalysisRunner(jobs.JobRunner):
    model = ImageAnalysis
    related = ("image",)

    def work(self, job: ImageAnalysis) -> tuple[str, str]:
        image = job.image
        self.log(job, [f"Reading {image.image_id} from the build engine."])
        try:
            with jobs.heartbeats(job, HEARTBEAT_INTERVAL), \
                    Engine.for_builds(timeout=ANALYSIS_ENGINE_TIMEOUT) as engine:
                analysis = analyse_saved_image(export_image(engine, image.image_id))
        except (EngineError, LayerAnalysisError) as exc:
            return JobStatus.FAILED, str(exc)[:2000]
        try:
            store_analysis(image, analysis.layers, analysis.total_size, analysis.wasted_bytes, analysis.efficiency,
                           analysis.empty_layers)
        except LayerMappingMismatch as exc:
            return JobStatus.FAILED, str(exc)[:2000]
        self.log(job, [f"{len(analysis.layers)} layers, {analysis.total_size} bytes of files, "
                       f"{analysis.wasted_bytes} wasted."])
        # Recorded once the files are: the packages' layers are the rows store_analysis just checked.
        record_packages(image, analysis.packages, analysis.os_release)
        self.log(job, [packages_summary(analysis.packages, analysis.os_release)])
        return JobStatus.SUCCEEDED, ""


def run_analysis(analysis_id: int) -> None:
    AnalysisRunner().run(analysis_id)


def run_queued_analysis_of(image_id: int) -> None:
    """A task sent by the image's id (before analyses were jobs): run the image's queued analysis, if any."""
    queued = queued_analysis_of(image_id)
    if queued is not None:
        run_analysis(queued.pk)
