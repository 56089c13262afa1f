"""One object of every kind a URL takes an id for, made directly in the database (no engine, no registry).

The matrix and the schemathesis run both use these. Hosts and registry accounts point at 127.0.0.1:9 (the
discard port, where nothing listens), so a check that slips through is refused at once and leaves the machine.
"""

from __future__ import annotations

import io

from django.db import models
from django.utils import timezone

from builds.models import Build, BuildNode, BuildStep, Image, ImageAnalysis, Layer, SourceImport
from builds.services import repositories as build_services
from builds.services.images import image_config
from builds.vulnerabilities.models import Vulnerability, VulnerabilityImport, VulnerabilityMatch
from console import jobs
from console.accounts.services import create_access_token
from console.constants import JobStatus
from console.events.models import Delivery, Event, Webhook
from fleet.models import Deployment, DeploymentTarget, Host, PendingRelease
from registry.constants import RegistryKind
from registry.models import GarbageCollection, Pull, Push, RegistryAccount
from tests.builds.archive_factory import tar_bytes

UNREACHABLE_ENGINE = "tcp://127.0.0.1:9"
UNREACHABLE_REGISTRY = "127.0.0.1:9"
DOCKERFILE = b"FROM busybox:1.35.0\nCOPY app.txt /app.txt\nCMD [\"cat\", \"/app.txt\"]\n"


def make_objects(owner, marker: str) -> dict[str, models.Model]:
    """One object of each kind for `owner`, every name carrying `marker` so that a leak of any of them into
    another user's answer can be found by searching for it."""
    now = timezone.now()
    repository = build_services.create_repository(owner, f"{marker}-repo", f"{marker} description")
    archive = tar_bytes([("Dockerfile", DOCKERFILE), ("app.txt", marker.encode())])
    source = build_services.add_archive_source(repository, io.BytesIO(archive), f"{marker}.tar")
    image_id = "sha256:" + marker.encode().hex().ljust(64, "0")[:64]
    build = Build.objects.create(
        owner=owner, repository=repository, source=source, tags=[f"{marker}/app:1"], status=JobStatus.SUCCEEDED,
        started_at=now, finished_at=now, image_id=image_id, step_count=1, labels={"marker": marker},
    )
    step = BuildStep.objects.create(build=build, number=1, instruction=f"FROM busybox # {marker}",
                                    status=JobStatus.SUCCEEDED, layer_id=image_id, started_at=now, finished_at=now)
    jobs.append_log(build, [f"Step 1/1 : FROM busybox # {marker}"])
    image = Image.objects.create(owner=owner, image_id=image_id, tags=[f"{marker}/app:1"], size=1234, created=now,
                                 architecture="amd64", os="linux", labels={"marker": marker}, build=build,
                                 repository=repository,
                                 config=image_config({"Env": [f"WHO={marker}"], "Cmd": ["cat", "/app.txt"]}))
    Layer.objects.create(image=image, index=0, diff_id=image_id, created_by=f"COPY {marker}", size=1234,
                         build_step=step)
    # An analysis run that failed (the image is not on any engine): its log is the owner's only.
    analysis = ImageAnalysis.objects.create(image=image, status=JobStatus.FAILED, error=f"{marker} analysis",
                                            started_at=now, finished_at=now)
    jobs.append_log(analysis, [f"{marker} analysis log"])
    Image.objects.filter(pk=image.pk).update(analysis=analysis)
    registry = RegistryAccount.objects.create(owner=owner, name=f"{marker}-registry", kind=RegistryKind.GENERIC,
                                              url=UNREACHABLE_REGISTRY, username=marker, secret=f"{marker}-secret")
    push = Push.objects.create(owner=owner, registry=registry, image=image_id, repository=f"{marker}/app", tag="1",
                               status=JobStatus.SUCCEEDED, started_at=now, finished_at=now)
    pull = Pull.objects.create(owner=owner, registry=registry, reference=f"{marker}/app:1",
                               status=JobStatus.SUCCEEDED, started_at=now, finished_at=now)
    host = Host.objects.create(owner=owner, name=f"{marker}-host", url=UNREACHABLE_ENGINE, labels={"env": marker})
    deployment = Deployment.objects.create(owner=owner, name=f"{marker}-app", image=f"{marker}/app:1",
                                           image_id=image_id, env={"WHO": marker}, status=JobStatus.SUCCEEDED,
                                           started_at=now, finished_at=now)
    DeploymentTarget.objects.create(deployment=deployment, host=host, host_name=host.name,
                                    status=JobStatus.SUCCEEDED, container_id="c0ffee", url="http://127.0.0.1:9/")
    jobs.append_log(deployment, [f"deployed {marker}"])
    source_import = SourceImport.objects.create(owner=owner, repository=repository,
                                                git_url=f"https://{marker}.example/r", status=JobStatus.FAILED,
                                                error=f"{marker} failed", started_at=now, finished_at=now)
    jobs.append_log(source_import, [f"Cloning {marker}"])
    token, _raw = create_access_token(owner, f"{marker}-token")
    # Not anyone's: the build farm's nodes are for staff, and everyone else is refused.
    node = BuildNode.objects.create(name=f"{marker}-node", engine_url=UNREACHABLE_ENGINE, queue=f"{marker}-builds")
    webhook = Webhook.objects.create(owner=owner, url=f"https://{marker}.example/hook", events=["image.pushed"],
                                     secret=f"{marker}-secret")
    event = Event.objects.create(owner=owner, kind="image.pushed", key=f"{marker}-event", repository=f"{marker}/app",
                                 data={"tag": marker})
    delivery = Delivery.objects.create(webhook=webhook, event=event, status=JobStatus.FAILED, error=f"{marker} 500")
    # Vulnerability data is the console's (staff import it); the owner's image has a match that names the marker.
    vulnerability_import = VulnerabilityImport.objects.create(
        owner=owner, kind="folder", name=f"/srv/osv/{marker}", status=JobStatus.SUCCEEDED, started_at=now,
        finished_at=now)
    jobs.append_log(vulnerability_import, [f"Reading {marker}"])
    vulnerability = Vulnerability.objects.create(osv_id=f"OSV-{marker}", summary=f"{marker} summary")
    VulnerabilityMatch.objects.create(image=image, vulnerability=vulnerability, ecosystem="npm",
                                      matched_name=f"{marker}-package", package=f"{marker}-package",
                                      package_type="npm", installed_version="1.0.0", fixed_version="1.0.1",
                                      first_seen_import=vulnerability_import, first_seen_at=now)
    pending = PendingRelease.objects.create(owner=owner, deployment=deployment, name=deployment.name,
                                            follow_tag=f"{marker}/app:1", digest="sha256:" + "c" * 64)
    # Neither: garbage collections of the console's registry are staff's.
    collection = GarbageCollection.objects.create(status=JobStatus.SUCCEEDED, error=f"{marker} collection",
                                                  started_at=now, finished_at=now)
    jobs.append_log(collection, [f"{marker} collected"])
    return {
        "pending_release": pending, "webhook": webhook, "event": event, "delivery": delivery,
        "vulnerability_import": vulnerability_import,
        "repository": repository, "source": source, "build": build, "image": image, "registry": registry,
        "push": push, "pull": pull, "host": host, "deployment": deployment, "token": token, "build_node": node,
        "source_import": source_import, "garbage_collection": collection,
    }
