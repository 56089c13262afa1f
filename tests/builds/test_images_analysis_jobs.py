"""An image's analysis is a job of its own (ImageAnalysis): one active run per image, a run the broker refused
ends failed, its log reads as every job's log does, a bug in it ends it failed, and the data of the fields that
held its state before moves into runs."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from builds import tasks
from builds.models import ImageAnalysis
from builds.runner import analysis as analysis_runner
from builds.services import nodes
from builds.services.analysis import NOT_QUEUED, request_analysis
from console.jobs import enqueue
from tests.builds.test_images_fixtures import make_image

pytestmark = pytest.mark.django_db


def test_one_run_is_queued_however_often_it_is_asked_for(owner, django_capture_on_commit_callbacks):
    image = make_image(owner, "asked", ["one"])
    with django_capture_on_commit_callbacks(execute=False) as sent:
        assert request_analysis(image) is True
        assert request_analysis(image) is False
    assert len(sent) == 1
    assert image.analyses.count() == 1 and image.analysis.status == "queued"


def test_an_active_run_the_image_does_not_point_at_still_blocks_a_second(owner, django_capture_on_commit_callbacks):
    # What a request that lost the race meets on SQLite, where the image's row is not locked: the constraint.
    image = make_image(owner, "raced", ["one"])
    ImageAnalysis.objects.create(image=image)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        assert request_analysis(image) is False
    assert sent == [] and image.analyses.count() == 1


def test_a_run_the_broker_refuses_ends_failed_and_can_be_asked_for_again(
        owner, monkeypatch, django_capture_on_commit_callbacks):
    image = make_image(owner, "refused", ["one"])

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(enqueue, "send", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        assert request_analysis(image) is True
    image.refresh_from_db()
    assert (image.analysis_status, image.analysis_error) == ("failed", NOT_QUEUED)
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=False):
        assert request_analysis(image) is True
    assert image.analyses.count() == 2 and image.analysis_status == "queued"


def test_a_bug_in_the_analysis_ends_the_run_failed_with_its_traceback_in_the_log(
        owner, monkeypatch, owner_api, django_capture_on_commit_callbacks):
    image = make_image(owner, "buggy", ["one"])
    with django_capture_on_commit_callbacks(execute=False):
        request_analysis(image)

    def bug(*args, **kwargs):
        raise RuntimeError("a bug in the analysis")

    monkeypatch.setattr(analysis_runner, "analyse_saved_image", bug)
    monkeypatch.setattr(analysis_runner, "export_image", lambda engine, image_id: iter([]))
    monkeypatch.setattr(analysis_runner.Engine, "for_builds", FakeEngine)
    tasks.run_image_analysis(image.analysis_id)
    image.refresh_from_db()
    assert image.analysis_status == "failed"
    assert "unexpected error" in image.analysis_error and "RuntimeError" not in image.analysis_error
    body = owner_api.get(f"/api/v1/images/{image.pk}/analysis/log/").json()
    assert body["finished"] is True
    assert any("RuntimeError: a bug in the analysis" in line for line in body["lines"])
    assert owner_api.get(f"/api/v1/images/{image.pk}/analysis/log/?offset=-1").status_code == 400


def test_an_image_never_analysed_has_no_analysis_log(owner, owner_api):
    image = make_image(owner, "never", ["one"])
    response = owner_api.get(f"/api/v1/images/{image.pk}/analysis/log/")
    assert response.status_code == 404 and "not been analysed" in response.json()["detail"]


def test_the_task_by_image_id_runs_the_images_queued_run(owner, monkeypatch, django_capture_on_commit_callbacks):
    image = make_image(owner, "old-task", ["one"])
    with django_capture_on_commit_callbacks(execute=False):
        request_analysis(image)
    ran = []
    monkeypatch.setattr(analysis_runner, "run_analysis", ran.append)
    tasks.analyse_image(image.pk)
    tasks.analyse_image(image.pk + 1000)  # no such image: nothing to run
    assert ran == [image.analysis_id]


def test_a_run_is_routed_to_the_queue_of_the_node_holding_its_image(owner, django_capture_on_commit_callbacks):
    from builds.models import BuildNode

    node = BuildNode.objects.create(name="holder", engine_url="tcp://10.203.9.9:2375", queue="builds.holder")
    image = make_image(owner, "routed", ["one"], node=node)
    with django_capture_on_commit_callbacks(execute=False):
        request_analysis(image)
    assert nodes.route_task("builds.run_image_analysis", [image.analysis_id], {}, {}) == {"queue": "builds.holder"}
    assert nodes.route_task("builds.run_image_analysis", [image.analysis_id + 1000], {}, {}) is None


class FakeEngine:
    def __init__(self, *args, **kwargs) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_analysis_fields_become_runs(owner):
    """The migration: each image's analysis fields become its first run (and back)."""
    executor = MigrationExecutor(connection)
    before, after = [("builds", "0007_shared_images")], [("builds", "0008_image_analysis_jobs")]
    try:
        executor.migrate(before)
        old = MigrationExecutor(connection).loader.project_state(before).apps
        OldImage = old.get_model("builds", "Image")
        for n, (status, error) in enumerate([("succeeded", ""), ("failed", "it broke"), ("none", "")]):
            OldImage.objects.create(owner_id=owner.pk, image_id=f"sha256:{n:064x}", analysis_status=status,
                                    analysis_error=error)
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
        # Read through the models as 0008 left them: later migrations add columns the live model selects.
        NewImage = executor.loader.project_state(after).apps.get_model("builds", "Image")
        states = {image.image_id[-1]: ((image.analysis.status, image.analysis.error) if image.analysis_id
                                       else ("none", ""))
                  for image in NewImage.objects.select_related("analysis")}
        assert states == {"0": ("succeeded", ""), "1": ("failed", "it broke"), "2": ("none", "")}
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
