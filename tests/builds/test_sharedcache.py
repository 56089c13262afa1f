"""When a build shares its cache through the console's registry, and what it asks BuildKit for (no engine: the
real sharing is tests/builds/test_farm_cache.py)."""

from __future__ import annotations

import pytest

from builds import sharedcache
from builds.constants import NodeStatus
from builds.models import Build, BuildNode
from builds.runner.buildkit import cache_options
from builds.services import repositories
from registry.tokens import CERT_FILE, ensure_signing_material
from tests.builds.build_helpers import source_from

pytestmark = pytest.mark.django_db


@pytest.fixture
def registry_settings(settings, tmp_path):
    ensure_signing_material(tmp_path)
    settings.REGISTRY_DIR = tmp_path
    settings.REGISTRY_ADDRESS = "10.0.0.5:5000"
    settings.BUILD_CACHE_SHARING = True
    assert (tmp_path / CERT_FILE).exists()
    return settings


def a_build(owner, node: bool, **fields) -> Build:
    number = Build.objects.count()
    repository = repositories.create_repository(owner, f"app{number}", "")
    source = source_from(repository, {"Dockerfile": "FROM busybox:1.35.0\n"})
    farm_node = BuildNode.objects.create(name=f"n{number}", engine_url="tcp://10.0.0.9:2375",
                                         queue=f"builds.n{number}", status=NodeStatus.UP) if node else None
    return Build.objects.create(owner=owner, repository=repository, source=source, node=farm_node, **fields)


def test_a_farm_build_shares_its_cache_in_the_console_namespace_per_repository(owner, registry_settings):
    build = a_build(owner, node=True)
    location = sharedcache.location_for(build)
    assert location.registry == "10.0.0.5:5000"
    assert location.repository == f"console-cache/r{build.repository_id}"
    assert location.reference == f"10.0.0.5:5000/console-cache/r{build.repository_id}:{location.tag}"
    # Another Dockerfile or target of the same repository keeps a cache of its own.
    assert sharedcache.cache_key(build) != sharedcache.cache_key(Build(path=build.path, dockerfile="other.Dockerfile"))
    assert sharedcache.cache_key(build) != sharedcache.cache_key(Build(path=build.path, dockerfile=build.dockerfile,
                                                                       target="final"))


def test_no_sharing_off_the_farm_when_turned_off_or_without_a_signing_key(owner, registry_settings, tmp_path):
    assert sharedcache.location_for(a_build(owner, node=False)) is None
    build = a_build(owner, node=True)
    registry_settings.BUILD_CACHE_SHARING = False
    assert sharedcache.location_for(build) is None
    registry_settings.BUILD_CACHE_SHARING = True
    registry_settings.REGISTRY_DIR = tmp_path / "not-set-up"
    assert sharedcache.location_for(build) is None


def test_a_no_cache_build_exports_its_cache_but_imports_none(owner, registry_settings):
    location = sharedcache.location_for(a_build(owner, node=True))
    assert cache_options(None, no_cache=False) == {}
    assert cache_options(location, no_cache=True) == {"inline_cache": True}
    options = cache_options(location, no_cache=False)
    assert options["inline_cache"] is True and options["cache_from"] == [location.reference]
    username, password = options["registry_logins"][location.registry]
    assert username == "console-cache" and password
