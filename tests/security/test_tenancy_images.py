"""An attacker's attempts on another user's images on the shared engine, replayed against the real engine and a
real worker: nothing of the victim's changes or leaks (builds/access.py is the one decision).

Alice is the victim (`owner`), Mallory the attacker (`outsider`).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from builds import access
from builds.models import Build, Image
from tests.builds.build_helpers import remove_images, source_from, wait_for_build
from tests.fixtures.worker import routed_to, running_worker

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]
DOCKER = "/usr/bin/docker"
URL = "/api/v1/builds/"


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    with running_worker(tmp_path_factory.mktemp("worker")) as running, routed_to(running):
        yield running


def engine_id(reference: str) -> str:
    answer = subprocess.run([DOCKER, "image", "inspect", "-f", "{{.Id}}", reference], capture_output=True, text=True)
    return answer.stdout.strip() if answer.returncode == 0 else ""


def build(api, source, **options) -> Build:
    response = api.post(URL, {"source": source.pk, **options}, format="json")
    assert response.status_code == 202, response.json()
    return wait_for_build(Build.objects.get(pk=response.json()["id"]))


def repository_of(api, name: str):
    from builds.models import Repository

    response = api.post("/api/v1/repositories/", {"name": name}, format="json")
    assert response.status_code == 201, response.json()
    return Repository.objects.get(pk=response.json()["id"])


@pytest.fixture
def alice_app(worker, owner, owner_api):
    """Alice's private image `alice-app:1`, holding her secret file, built by the real worker."""
    source = source_from(repository_of(owner_api, "private"), {
        "Dockerfile": "FROM busybox:1.35.0\nCOPY secret.txt /secret.txt\n", "secret.txt": "alice's secret\n"})
    done = build(owner_api, source, tags=["alice-app:1", "hello:1.0"])
    assert done.status == "succeeded", done.error
    image = Image.objects.get(owner=owner, image_id=done.image_id)
    yield image
    remove_images(done.image_id)


@pytest.fixture
def mallory_api(outsider):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(outsider)
    return client


def test_a_build_may_not_start_from_another_users_image_by_any_name(alice_app, mallory_api):
    repository = repository_of(mallory_api, "thief")
    short = alice_app.image_id.removeprefix("sha256:")[:12]
    attempts = [
        ("FROM alice-app:1\nRUN cat /secret.txt\n", "Line 1: FROM alice-app:1"),
        (f"FROM {alice_app.image_id}\n", "Line 1: FROM"),
        (f"FROM {short}\n", "Line 1: FROM"),
        ("FROM busybox:1.35.0\nCOPY --from=alice-app:1 /secret.txt /stolen\n", "Line 2: COPY --from alice-app:1"),
        ("ARG BASE=alice-app:1\nFROM $BASE\n", "Line 2: FROM alice-app:1"),
        ("FROM busybox:1.35.0\nRUN --mount=type=bind,from=alice-app:1,target=/a cat /a/secret.txt\n",
         "Line 2: RUN --mount from= alice-app:1"),
        (f"FROM busybox:1.35.0 AS one\nFROM one\nCOPY --from={short} /secret.txt /s\n", "Line 3: COPY --from"),
    ]
    for dockerfile, where in attempts:
        source = source_from(repository, {"Dockerfile": dockerfile})
        answer = mallory_api.post(URL, {"source": source.pk}, format="json")
        assert answer.status_code == 400, (dockerfile, answer.json())
        message = str(answer.json())
        assert where in message and "You have no image" in message, message
    assert not Build.objects.filter(repository=repository).exists()


def test_two_users_names_never_collide_and_a_tag_never_moves_another_users_image(
        alice_app, owner, owner_api, outsider, mallory_api):
    busybox_before = engine_id("busybox:1.35.0")
    repository = repository_of(mallory_api, "squatter")
    source = source_from(repository, {"Dockerfile": "FROM busybox:1.35.0\nRUN echo mallory > /who\n"})
    done = build(mallory_api, source, tags=["hello:1.0", "alice-app:1", "busybox:1.35.0",
                                          "127.0.0.1:5000/alice/app:1"])
    try:
        assert done.status == "succeeded", done.error
        # Mallory's names are Mallory's: in her own namespace on the engine.
        assert engine_id(access.engine_name(outsider, "hello:1.0")) == done.image_id
        assert engine_id(access.engine_name(outsider, "busybox:1.35.0")) == done.image_id
        # Alice's names and the shared base image still mean what they meant.
        assert engine_id(access.engine_name(owner, "hello:1.0")) == alice_app.image_id
        assert engine_id(access.engine_name(owner, "alice-app:1")) == alice_app.image_id
        assert engine_id("busybox:1.35.0") == busybox_before
        assert engine_id("127.0.0.1:5000/alice/app:1") == ""
        # Both users' records say hello:1.0, each their own image.
        assert access.grant(owner, "hello:1.0").image_id == alice_app.image_id
        assert access.grant(outsider, "hello:1.0").image_id == done.image_id
        # Alice's next build FROM her own name starts from her own image, not Mallory's.
        alice_source = source_from(alice_app.repository, {"Dockerfile": "FROM alice-app:1\nRUN cat /secret.txt\n"})
        again = build(owner_api, alice_source)
        assert again.status == "succeeded", again.error
        # Its layers start with her image's (BuildKit keeps no parent ids in the history).
        layers = {image: json.loads(subprocess.run([DOCKER, "inspect", "-f", "{{json .RootFS.Layers}}", image],
                                                   capture_output=True, text=True, check=True).stdout)
                  for image in (again.image_id, alice_app.image_id, done.image_id)}
        assert layers[again.image_id][:len(layers[alice_app.image_id])] == layers[alice_app.image_id]
        assert layers[again.image_id][:len(layers[done.image_id])] != layers[done.image_id]
        remove_images(again.image_id)
    finally:
        remove_images(done.image_id)


def test_a_tag_given_later_stays_in_the_users_namespace(alice_app, outsider, mallory_api):
    from builds.services.images import tag_image

    repository = repository_of(mallory_api, "tagger")
    done = build(mallory_api, source_from(repository, {"Dockerfile": "FROM busybox:1.35.0\nRUN echo m > /m\n"}))
    try:
        mine = Image.objects.get(owner=outsider, image_id=done.image_id)
        tag_image(mine, "alice-app", "1")
        assert engine_id(access.engine_name(outsider, "alice-app:1")) == done.image_id
        assert access.grant(alice_app.owner, "alice-app:1").image_id == alice_app.image_id
        assert "alice-app:1" in Image.objects.get(pk=mine.pk).tags
    finally:
        remove_images(done.image_id)


def test_pushes_and_deployments_refuse_another_users_image_and_unclaimed_layers(alice_app, outsider):
    from django.core.exceptions import ValidationError

    from fleet.services import resolve_image as deploy_resolve
    from registry.services import resolve_image as push_resolve

    # An intermediate image of Alice's build: no record claims it, it holds her file.
    layers = subprocess.run([DOCKER, "history", "-q", "--no-trunc", alice_app.image_id], capture_output=True,
                            text=True, check=True).stdout.split()
    names = ["alice-app:1", alice_app.image_id, alice_app.image_id.removeprefix("sha256:")[:12], str(alice_app.pk),
             *[layer for layer in layers if layer.startswith("sha256:")]]
    for name in names:
        with pytest.raises(ValidationError):
            push_resolve(outsider, name)
        with pytest.raises(ValidationError):
            deploy_resolve(outsider, name, pulled=False)


def test_sync_records_only_images_that_are_provably_the_users(alice_app, owner, outsider, mallory_api):
    from builds.constants import LABEL_BUILD_ID
    from builds.services.images import forget_records, sync_images

    # Mallory forges Alice's build label on her own image.
    repository = repository_of(mallory_api, "forger")
    forged = source_from(repository, {
        "Dockerfile": f"FROM busybox:1.35.0\nLABEL {LABEL_BUILD_ID}={alice_app.build_id}\nRUN echo x > /x\n"})
    done = build(mallory_api, forged)
    try:
        assert done.status == "succeeded", done.error
        # Through the service, which locks each record: the worker may be queueing the build's analysis now.
        forget_records(Image.objects.filter(owner=outsider))
        sync_images(outsider)
        recorded = set(Image.objects.filter(owner=outsider).values_list("image_id", flat=True))
        assert alice_app.image_id not in recorded
        assert done.image_id in recorded
        sync_images(owner)
        assert not Image.objects.filter(owner=owner, image_id=done.image_id).exists()
        assert Image.objects.filter(owner=owner, image_id=alice_app.image_id).exists()
    finally:
        remove_images(done.image_id)


def test_add_of_a_url_on_the_consoles_machine_is_refused(mallory_api, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    repository = repository_of(mallory_api, "fetcher")
    for url in ("http://127.0.0.1:8000/admin/", "http://169.254.169.254/latest/meta-data/", "http://[::1]:5000/v2/"):
        source = source_from(repository, {"Dockerfile": f"FROM busybox:1.35.0\nADD {url} /answer\n"})
        answer = mallory_api.post(URL, {"source": source.pk}, format="json")
        assert answer.status_code == 400, answer.json()
        assert "Line 2: ADD" in str(answer.json()) and "only staff" in str(answer.json())
