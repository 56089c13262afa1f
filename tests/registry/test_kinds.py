from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from registry.kinds import endpoint, normalise


def test_it_fills_in_docker_hub(settings):
    assert normalise("dockerhub", "", "alice") == ("docker.io", "alice")
    hub = endpoint("dockerhub", "docker.io")
    assert hub.index == "docker.io"
    assert hub.auth_server == "https://index.docker.io/v1/"
    assert hub.api_url == "https://registry-1.docker.io"
    assert hub.reference("alice/app") == "docker.io/alice/app"


def test_it_fills_in_quay():
    assert normalise("quay", "", "team+robot") == ("quay.io", "team+robot")
    quay = endpoint("quay", "quay.io")
    assert (quay.index, quay.auth_server, quay.api_url) == ("quay.io", "quay.io", "https://quay.io")


def test_it_fills_in_gcr_with_the_json_key_user():
    assert normalise("gcr", "", "") == ("gcr.io", "_json_key")
    assert normalise("gcr", "https://eu.gcr.io", "") == ("eu.gcr.io", "_json_key")
    gcr = endpoint("gcr", "eu.gcr.io")
    assert (gcr.index, gcr.api_url) == ("eu.gcr.io", "https://eu.gcr.io")


def test_it_fills_in_ghcr():
    assert normalise("ghcr", "", "octocat") == ("ghcr.io", "octocat")
    assert endpoint("ghcr", "ghcr.io").api_url == "https://ghcr.io"


def test_it_refuses_a_foreign_host_for_a_fixed_kind():
    with pytest.raises(ValidationError) as info:
        normalise("quay", "registry.example.com", "x")
    assert "quay.io" in str(info.value.message_dict["url"])


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("registry.example.com", "https://registry.example.com"),
        ("https://Registry.Example.com/v2/", "https://registry.example.com"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("registry.example.com:5443/", "https://registry.example.com:5443"),
    ],
)
def test_it_normalises_a_generic_url(typed, stored):
    assert normalise("generic", typed, " bob ") == (stored, "bob")


def test_a_generic_endpoint_names_images_by_host_and_port():
    generic = endpoint("generic", "http://127.0.0.1:5000")
    assert generic.index == "127.0.0.1:5000"
    assert generic.auth_server == "127.0.0.1:5000"
    assert generic.api_url == "http://127.0.0.1:5000"
    assert generic.insecure


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "needs its URL"),
        ("ftp://registry.example.com", "http:// or https://"),
        ("https://user:pw@registry.example.com", "not in the URL"),
        ("https://registry.example.com/some/path", "root URL"),
        ("https://registry.example.com:99999", "not a URL"),
    ],
)
def test_it_refuses_a_bad_generic_url(typed, message):
    with pytest.raises(ValidationError) as info:
        normalise("generic", typed, "")
    assert message in " ".join(info.value.message_dict["url"])


def test_the_console_kind_is_the_settings_registry(settings):
    settings.REGISTRY_ADDRESS = "127.0.0.1:5000"
    console = endpoint("console", "127.0.0.1:5000")
    assert console.api_url == "http://127.0.0.1:5000"
    settings.REGISTRY_ADDRESS = "registry.example.com"
    assert endpoint("console", "registry.example.com").api_url == "https://registry.example.com"


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValidationError):
        normalise("artifactory", "x", "y")
