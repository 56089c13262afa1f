from __future__ import annotations

import subprocess

import pytest
from django.urls import reverse


@pytest.mark.engine
def test_it_shows_the_engine_and_the_counts(owner_client):
    response = owner_client.get(reverse("dashboard"))
    assert response.status_code == 200
    version = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                             text=True).stdout.strip()
    driver = subprocess.run(["docker", "info", "--format", "{{.Driver}}"], capture_output=True,
                            text=True).stdout.strip()
    engine = response.context["engine"]
    assert engine["server_version"] == version
    assert engine["storage_driver"] == driver
    content = response.content.decode()
    assert version in content and driver in content
    assert [item["label"] for item in response.context["counts"]] == [
        "Repositories", "Builds", "Images", "Registries", "Hosts", "Deployments"]


def test_it_says_when_the_engine_is_unreachable(owner_client, settings):
    settings.DOCKER_HOST = "tcp://127.0.0.1:9"
    response = owner_client.get(reverse("dashboard"))
    assert response.status_code == 200
    assert "Not connected to tcp://127.0.0.1:9" in response.content.decode()


def test_it_refuses_post(owner_client):
    assert owner_client.post(reverse("dashboard")).status_code == 405


def test_every_asset_is_served_locally(owner_client):
    content = owner_client.get(reverse("dashboard")).content.decode()
    assert "http://" not in content.replace("http://testserver", "")
    assert "https://" not in content


def test_the_counts_are_the_users_own(owner_client, owner, outsider):
    from builds.models import Repository

    Repository.objects.create(owner=owner, name="mine")
    Repository.objects.create(owner=outsider, name="theirs")
    counts = {item["label"]: item["count"] for item in owner_client.get(reverse("dashboard")).context["counts"]}
    assert counts["Repositories"] == 1
    assert counts["Builds"] == 0
