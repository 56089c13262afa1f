"""An analysis whose worker died does not stay queued or running: the periodic reaper fails it, and it can be
asked for again."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from builds.models import Image, ImageAnalysis
from builds.services.analysis import reap_lost_analyses, request_analysis
from builds.tasks import reap_lost_analyses as reap_task


def image(owner, n: int, status: str, changed_minutes_ago: float) -> Image:
    """An image whose latest analysis run is `status`, queued (and, running, last heard of) that long ago."""
    changed = timezone.now() - timedelta(minutes=changed_minutes_ago)
    row = Image.objects.create(owner=owner, image_id=f"sha256:{n:064x}")
    run = ImageAnalysis.objects.create(
        image=row, status=status, queued_at=changed, started_at=changed if status != "queued" else None,
        heartbeat_at=changed if status != "queued" else None, finished_at=changed if status == "succeeded" else None)
    Image.objects.filter(pk=row.pk).update(analysis=run)
    row.refresh_from_db()
    return row


def test_stale_queued_and_running_analyses_fail_and_fresh_ones_stay(
        owner, settings, django_capture_on_commit_callbacks):
    settings.IMAGE_ANALYSIS_TIMEOUT = 600
    lost_running = image(owner, 1, "running", 30)
    lost_queued = image(owner, 2, "queued", 90)
    fresh = image(owner, 3, "running", 1)
    done = image(owner, 4, "succeeded", 300)
    assert sorted(reap_task()) == sorted([lost_running.pk, lost_queued.pk])
    for row in (lost_running, lost_queued, fresh, done):
        row.refresh_from_db()
    assert lost_running.analysis_status == lost_queued.analysis_status == "failed"
    assert "worker was lost" in lost_running.analysis_error
    assert (fresh.analysis_status, done.analysis_status) == ("running", "succeeded")
    # A failed analysis can be asked for again, and counts as fresh from then on.
    with django_capture_on_commit_callbacks(execute=False):
        assert request_analysis(lost_running) is True
    lost_running.refresh_from_db()
    assert lost_running.analysis_status == "queued"
    assert reap_lost_analyses() == []
