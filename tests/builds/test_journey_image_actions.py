"""The image page and a succeeded build's page lead on without retyping: Push and Deploy open their forms with the
image chosen; the image page shows its pull/run commands (copy buttons), its deployments and the current
release's URL per host; removing asks first."""

from __future__ import annotations

import pytest

from builds.models import Build
from console.constants import JobStatus
from fleet.models import Deployment, Host
from registry.models import Push
from registry.services import accounts_for
from tests.builds.build_helpers import source_from
from tests.builds.test_images_fixtures import make_image


@pytest.fixture
def hello(owner):
    image = make_image(owner, "hello", ["a"], tags=["hello:1"])
    image.config = {**image.config, "exposed_ports": ["8080/tcp"]}
    image.save(update_fields=["config"])
    return image


def test_the_image_page_has_push_and_deploy_actions(owner_client, hello):
    page = owner_client.get(f"/images/{hello.pk}/").content.decode()
    assert f'id="push-image" href="/pushes/new/?image={hello.pk}"' in page
    assert f'id="deploy-image" href="/deployments/new/?image={hello.pk}"' in page
    assert 'data-confirm="Remove the image hello:1 from the build engine?"' in page
    assert "Not pushed yet" in page and "Not deployed yet." in page


def test_the_image_page_shows_pull_and_run_commands_with_copy_buttons(owner_client, owner, outsider, hello):
    console = next(account for account in accounts_for(owner) if account.is_console)
    Push.objects.create(owner=owner, registry=console, image=hello.image_id, repository="alice/hello", tag="1",
                        status=JobStatus.SUCCEEDED)
    Push.objects.create(owner=owner, registry=console, image=hello.image_id, repository="alice/failed", tag="1",
                        status=JobStatus.FAILED)
    target = f"{console.endpoint.reference('alice/hello')}:1"
    page = owner_client.get(f"/images/{hello.pk}/").content.decode()
    assert f'<button type="button" class="copy" data-copy="docker pull {target}">Copy</button>' in page
    assert f'data-copy="docker run --rm -p 8080:8080 {target}"' in page
    assert "alice/failed" not in page and "Not pushed yet" not in page


def test_the_image_page_lists_its_deployments_and_the_current_releases_urls(owner_client, owner, outsider, hello):
    host = Host.objects.create(owner=owner, name="h1", url="tcp://127.0.0.1:9")
    old = Deployment.objects.create(owner=owner, name="hello", image="hello:1", image_id=hello.image_id,
                                    status=JobStatus.SUCCEEDED)
    old.targets.create(host=host, host_name="h1", status=JobStatus.SUCCEEDED, url="http://10.0.0.1:8080/old")
    current = Deployment.objects.create(owner=owner, name="hello", image="hello:1", image_id=hello.image_id,
                                        status=JobStatus.SUCCEEDED)
    current.targets.create(host=host, host_name="h1", status=JobStatus.SUCCEEDED, url="http://10.0.0.1:8080/")
    Deployment.objects.create(owner=outsider, name="theirs", image="x", image_id=hello.image_id,
                              status=JobStatus.SUCCEEDED)
    page = owner_client.get(f"/images/{hello.pk}/").content.decode()
    panel = page[page.index('id="image-deployments"'):]
    assert f'href="/deployments/{current.pk}/"' in panel and f'href="/deployments/{old.pk}/"' in panel
    assert panel.count('<span class="badge current">current</span>') == 1
    assert 'h1: <a href="http://10.0.0.1:8080/">' in panel and "8080/old" not in panel
    assert "theirs" not in panel


def test_a_succeeded_builds_page_links_its_image_and_its_push_and_deploy(owner_client, owner, repository):
    source = source_from(repository, {"Dockerfile": "FROM busybox:1.35.0\n"})
    build = Build.objects.create(owner=owner, repository=repository, source=source, status=JobStatus.SUCCEEDED)
    image = make_image(owner, "built", ["z"], build=build, repository=repository)
    build.image_id = image.image_id
    build.save(update_fields=["image_id"])
    page = owner_client.get(f"/builds/{build.pk}/").content.decode()
    assert 'id="build-result-image"' in page and f'href="/images/{image.pk}/"' in page
    assert f'id="push-built-image" href="/pushes/new/?image={image.pk}"' in page
    assert f'id="deploy-built-image" href="/deployments/new/?image={image.pk}"' in page


def test_a_running_build_offers_no_push_yet(owner_client, owner, repository):
    source = source_from(repository, {"Dockerfile": "FROM busybox:1.35.0\n"})
    build = Build.objects.create(owner=owner, repository=repository, source=source, status=JobStatus.RUNNING)
    assert 'id="push-built-image"' not in owner_client.get(f"/builds/{build.pk}/").content.decode()
