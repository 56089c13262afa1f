from __future__ import annotations

from celery import shared_task

from builds import runner


@shared_task(bind=True, acks_late=True, name="builds.run_build")
def run_build(self, build_id: int) -> None:
    """Run one build on this worker's engine (DOCKER_HOST)."""
    runner.run_build(build_id, worker=self.request.hostname or "")


@shared_task(name="builds.reap_lost_builds", acks_late=True)
def reap_lost_builds() -> list[int]:
    """Fail builds whose worker died, and hand waiting builds to workers (runs every minute)."""
    return runner.reap_lost_builds()
