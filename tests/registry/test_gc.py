"""Garbage collection of the console's registry (registry/services/gc.py, registry/maintenance.py) against the
registry as `make run` serves it (`manage.py registry_serve`, a real Distribution with the console's token auth)
and the real Docker CLI: what a collection frees, every kept tag pulling afterwards, the read-only window."""

from __future__ import annotations

import secrets

import pytest
import requests
from django.conf import settings

from console.constants import JobStatus
from console.engine import Engine
from registry import maintenance, storage
from registry.constants import READ_ONLY
from registry.models import GarbageCollection
from registry.services import browse, ensure_console_account, gc, retention
from registry.tokens import sign_token
from tests.conftest import PASSWORD
from tests.registry.helpers import make_unique_image
from tests.registry.test_tags_page import SCHEMA2, upload_image

pytestmark = [pytest.mark.registry, pytest.mark.django_db(transaction=True)]


def _bearer(repository: str, actions=("pull", "push")) -> dict:
    token = sign_token("alice", settings.REGISTRY_SERVICE,
                       [{"type": "repository", "name": repository, "actions": list(actions)}])["token"]
    return {"Authorization": f"Bearer {token}"}


def _untagged(server, repository: str, number: int) -> dict:
    """An image put by its digest only, as a multi-platform push puts its platforms' images."""
    image = upload_image(server, repository, [], created=f"2024-0{number}-01T00:00:00Z",
                         layer_sizes=(100 + number,), headers=_bearer(repository))
    put = requests.put(f"{server.url}/v2/{repository}/manifests/{image['digest']}", data=image["manifest"],
                       headers={"Content-Type": SCHEMA2, **_bearer(repository)})
    assert put.status_code == 201, put.text
    return image


def _login(docker_cli, server) -> None:
    login = docker_cli("login", server.address, "-u", "alice", "--password-stdin", input=PASSWORD)
    assert login.returncode == 0, login.stderr


def _collect(staff, delete_untagged: bool = False) -> GarbageCollection:
    job = gc.run_gc(gc.trigger_gc(staff, delete_untagged).pk)
    job.refresh_from_db()
    return job


@pytest.mark.engine
def test_it_frees_the_unique_bytes_of_deleted_tags_and_every_kept_tag_pulls(owner, staff, gc_registry, docker_cli):
    name = f"alice/gc-{secrets.token_hex(4)}"
    reference = f"{gc_registry.address}/{name}"
    _login(docker_cli, gc_registry)
    account = ensure_console_account(owner)
    made = []
    with Engine.for_builds() as engine:
        try:
            for tag in ("keep", "drop", "latest"):
                local, image_id = make_unique_image(engine)
                made.append(image_id)
                assert docker_cli("tag", local, f"{reference}:{tag}").returncode == 0
                pushed = docker_cli("push", f"{reference}:{tag}")
                assert pushed.returncode == 0, pushed.stderr
            # An index in another repository, whose platform images no tag names: a collection keeps them.
            multi = f"alice/gc-multi-{secrets.token_hex(4)}"
            parts = [_untagged(gc_registry, multi, n) for n in (1, 2)]
            upload_index_with(gc_registry, multi, "multi", parts)

            retention.set_rule(owner, account, name, {"keep_matching": ["keep"], "protect": ["latest"]})
            plan = retention.preview(account, name)
            assert plan.delete == ["drop"] and plan.frees_bytes > 64 * 1024
            drop = plan.digests["drop"]
            manifest_bytes = storage._blob_path(storage.data_root(), drop).stat().st_size
            assert retention.run_retention(retention.trigger_run(owner, account, name).pk).status == "succeeded"

            job = _collect(staff)
            assert job.status == JobStatus.SUCCEEDED, job.error
            # The image's layer and config (the preview's count) and its manifest, nothing else.
            assert job.freed_bytes == plan.frees_bytes + manifest_bytes
            assert job.bytes_before - job.bytes_after == job.freed_bytes
            assert maintenance.served_mode(gc_registry.directory)["mode"] == maintenance.READ_WRITE
            log = job_log(job)
            assert "serves read-only" in log and "serves read-write again" in log and "blob eligible" in log

            for image_id in made:
                engine.api.remove_image(image_id, force=True)
            for tag in ("keep", "latest"):
                pulled = docker_cli("pull", f"{reference}:{tag}")
                assert pulled.returncode == 0, pulled.stderr
            assert "not found" in docker_cli("pull", f"{reference}:drop").stderr.lower()
            for part in parts:
                assert _manifest(gc_registry, multi, part["digest"]) == 200
        finally:
            for image_id in made:
                if engine.image_exists(image_id):
                    engine.api.remove_image(image_id, force=True)
            docker_cli("rmi", f"{reference}:keep", f"{reference}:latest")


def job_log(job) -> str:
    from console import jobs

    return jobs.log_text(job)


def upload_index_with(server, repository: str, tag: str, images: list[dict]) -> str:
    """upload_index with the token the console's registry asks for."""
    import hashlib
    import json

    entries = [{"mediaType": SCHEMA2, "digest": image["digest"], "size": len(image["manifest"]),
                "platform": {"architecture": f"arch{number}", "os": "linux"}} for number, image in enumerate(images)]
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": entries}).encode()
    put = requests.put(f"{server.url}/v2/{repository}/manifests/{tag}", data=index,
                       headers={"Content-Type": "application/vnd.oci.image.index.v1+json", **_bearer(repository)})
    assert put.status_code == 201, put.text
    return f"sha256:{hashlib.sha256(index).hexdigest()}"


def _manifest(server, repository: str, digest: str) -> int:
    return requests.get(f"{server.url}/v2/{repository}/manifests/{digest}",
                        headers={"Accept": SCHEMA2, **_bearer(repository, ("pull",))}).status_code


def test_delete_untagged_is_refused_while_a_tag_points_at_an_index(staff, gc_registry):
    multi = f"alice/gc-index-{secrets.token_hex(4)}"
    parts = [_untagged(gc_registry, multi, n) for n in (1, 2)]
    upload_index_with(gc_registry, multi, "multi", parts)
    with pytest.raises(gc.Conflict, match=f"platform images of .*{multi}:multi"):
        gc.trigger_gc(staff, delete_untagged=True)
    assert not GarbageCollection.objects.exists()
    # Without it the index and its images stay whole.
    assert _collect(staff).status == JobStatus.SUCCEEDED
    assert all(_manifest(gc_registry, multi, part["digest"]) == 200 for part in parts)


@pytest.mark.engine
def test_a_push_during_the_window_is_told_read_only_and_succeeds_after(owner, staff, gc_registry, docker_cli):
    name = f"alice/gc-window-{secrets.token_hex(4)}"
    reference = f"{gc_registry.address}/{name}:1"
    _login(docker_cli, gc_registry)
    directory = gc_registry.directory
    # The job's window, held as the job holds it (a running collection and its lease), without collecting.
    job = GarbageCollection.objects.create(requested_by=staff, status=JobStatus.RUNNING)
    maintenance.hold_read_only(directory, 120, "test")
    with Engine.for_builds() as engine:
        local, image_id = make_unique_image(engine)
        try:
            assert maintenance.wait_for_mode(directory, maintenance.READ_ONLY, 60)
            assert docker_cli("tag", local, reference).returncode == 0
            refused = docker_cli("push", reference)
            assert refused.returncode != 0
            assert f"denied: {READ_ONLY}" in refused.stderr
            # A token from before the window does not help: Distribution itself refuses every write.
            started = requests.post(f"{gc_registry.url}/v2/{name}/blobs/uploads/", headers=_bearer(name))
            assert started.status_code == 405
            # Pulls go on, deletes are refused with the same words.
            pulled = requests.get(f"{gc_registry.url}/v2/{name}/tags/list", headers=_bearer(name, ("pull",)))
            assert pulled.status_code in (200, 404)
            with pytest.raises(browse.RegistryReadOnly, match="read-only"):
                browse.delete_tag(owner, ensure_console_account(owner), name, "1")
            assert storage.read_index().tags.get(name, {}) == {}

            GarbageCollection.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
            maintenance.release(directory)
            assert maintenance.wait_for_mode(directory, maintenance.READ_WRITE, 60)
            pushed = docker_cli("push", reference)
            assert pushed.returncode == 0, pushed.stderr
            engine.api.remove_image(image_id, force=True)
            again = docker_cli("pull", reference)
            assert again.returncode == 0, again.stderr
        finally:
            maintenance.release(directory)
            if engine.image_exists(image_id):
                engine.api.remove_image(image_id, force=True)
            docker_cli("rmi", reference)


def test_a_lease_its_holder_stopped_renewing_ends_by_itself(gc_registry):
    directory = gc_registry.directory
    maintenance.hold_read_only(directory, 1.5, "a worker that died")
    assert maintenance.wait_for_mode(directory, maintenance.READ_ONLY, 60)
    assert maintenance.wait_for_mode(directory, maintenance.READ_WRITE, 60)


def test_the_api_is_for_staff_and_follows_the_job(owner, owner_api, staff, staff_api, gc_registry):
    assert owner_api.post("/api/v1/registry/gc/", {"delete_untagged": False}, format="json").status_code == 403
    assert owner_api.get("/api/v1/registry/gc/").status_code == 403
    started = staff_api.post("/api/v1/registry/gc/", {"delete_untagged": False}, format="json")
    assert started.status_code == 202 and started.json()["status"] == JobStatus.QUEUED
    second = staff_api.post("/api/v1/registry/gc/", {}, format="json")
    assert second.status_code == 409 and "queued or running already" in second.json()["detail"]
    gc.run_gc(started.json()["id"])
    done = staff_api.get(f"/api/v1/registry/gc/{started.json()['id']}/").json()
    assert done["status"] == JobStatus.SUCCEEDED and done["freed_bytes"] >= 0
    assert done["requested_by"] == "root" and "garbage-collect" in done["log"]
    assert owner_api.get(f"/api/v1/registry/gc/{done['id']}/").status_code == 403
