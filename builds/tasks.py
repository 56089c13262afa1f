from __future__ import annotations

from celery import shared_task

from builds import analysis, runner


@shared_task(bind=True, acks_late=True, name="builds.run_build")
def run_build(self, build_id: int) -> None:
    """Run one build on this worker's engine (DOCKER_HOST)."""
    runner.run_build(build_id, worker=self.request.hostname or "")


@shared_task(name="builds.reap_lost_builds", acks_late=True)
def reap_lost_builds() -> list[int]:
    """Fail builds whose worker died, and hand waiting builds to workers (runs every minute)."""
    return runner.reap_lost_builds()


@shared_task(bind=True, acks_late=True, name="builds.analyse_image")
def analyse_image(self, image_id: int) -> None:
    """Read which files each layer of an image changes (the image record's id)."""
    analysis.run_analysis(image_id)
