from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

from builds import runner
from builds.services import analysis, engine_events, nodes, repositories


@shared_task(bind=True, acks_late=True, name="builds.run_build")
def run_build(self, build_id: int) -> None:
    """Run one build on its node's engine (or this worker's DOCKER_HOST off the farm)."""
    runner.run_build(build_id, worker=self.request.hostname or "")


@shared_task(name="builds.reap_lost_builds", acks_late=True)
def reap_lost_builds() -> list[int]:
    """Fail builds whose worker died, and hand waiting builds to workers (runs every minute)."""
    return runner.reap_lost_builds()


@shared_task(name="builds.check_nodes", acks_late=True)
def check_nodes() -> list[str]:
    """Mark build nodes without a recent heartbeat down, move their builds, hand out waiting ones (periodic)."""
    return nodes.check_nodes()


@shared_task(name="builds.follow_engine_events", acks_late=True)
def follow_engine_events() -> int:
    """Refresh the image records that the build engines' image events name (periodic)."""
    return engine_events.follow_engine_events()


@shared_task(bind=True, acks_late=True, name="builds.run_image_analysis")
def run_image_analysis(self, analysis_id: int) -> None:
    """Read which files each layer of an image changes (the ImageAnalysis job's id)."""
    runner.run_analysis(analysis_id)


@shared_task(bind=True, acks_late=True, name="builds.analyse_image")
def analyse_image(self, image_id: int) -> None:
    """The analysis task's name before analyses were jobs (the image record's id): runs its queued analysis."""
    runner.run_queued_analysis_of(image_id)


@worker_ready.connect
def remove_stale_build_folders(sender=None, **kwargs) -> None:
    """A worker killed mid-build could not remove its build's private folder (its secrets): the next one does."""
    runner.remove_stale_build_folders()


@worker_ready.connect
def register_build_node(sender=None, **kwargs) -> None:
    """A worker started with BUILD_NODE_NAME is a build node: register it and start its heartbeats."""
    consumer = sender
    queues = list(getattr(consumer.app.amqp.queues, "consume_from", None) or {})
    controller = getattr(consumer, "controller", None)
    identity = nodes.identity_from_worker(queues, getattr(controller, "concurrency", 0) or 0,
                                          getattr(consumer, "hostname", "") or "")
    if identity is not None:
        nodes.start_agent(identity)


@worker_shutdown.connect
def stop_build_node(sender=None, **kwargs) -> None:
    nodes.stop_agent()


@shared_task(name="builds.reap_lost_analyses", acks_late=True)
def reap_lost_analyses() -> list[int]:
    """Fail image analyses whose worker died, so they can be asked for again (runs every five minutes)."""
    return analysis.reap_lost_analyses()


@shared_task(bind=True, acks_late=True, name="builds.run_source_import")
def run_source_import(self, import_id: int) -> None:
    """Clone a git repository into a source (the SourceImport's id)."""
    repositories.run_git_import(import_id, worker=self.request.hostname or "")


@shared_task(name="builds.reap_lost_imports", acks_late=True)
def reap_lost_imports() -> list[int]:
    """Fail git imports whose worker died (runs every half minute, see console/celery.py)."""
    return repositories.reap_lost_imports()
