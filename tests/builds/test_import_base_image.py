from __future__ import annotations

import subprocess
import uuid

import pytest
from django.core.management import call_command

from builds.models import SharedImage
from console.baseimage import find_busybox, is_static_elf

# Needs the real engine (left out of `make test-fast`).
pytestmark = pytest.mark.engine


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def repository():
    name = f"console-test-base-{uuid.uuid4().hex[:8]}"
    yield name
    for line in docker("images", "-q", name).stdout.split():
        docker("rmi", "-f", line)


def test_it_makes_a_base_image_that_runs_a_shell(repository, capsys, db):
    call_command("import_base_image", repository=repository)
    assert "Imported" in capsys.readouterr().out
    # Every user may build FROM it by its plain names (builds/access.py).
    assert SharedImage.objects.filter(reference=f"{repository}:latest").exists()
    assert SharedImage.objects.filter(reference__startswith=f"{repository}:").count() == 2
    result = docker("run", "--rm", f"{repository}:latest", "sh", "-c", "echo made here; cat /etc/passwd")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("made here\nroot:x:0:0")
    tags = docker("images", "--format", "{{.Tag}}", repository).stdout.split()
    assert "latest" in tags and any(tag.count(".") == 2 for tag in tags)


def test_a_second_run_keeps_the_image(repository, capsys, db):
    call_command("import_base_image", repository=repository)
    call_command("import_base_image", repository=repository)
    assert "Already present" in capsys.readouterr().out


def test_it_uses_a_static_busybox():
    assert is_static_elf(find_busybox())
    assert not is_static_elf(__import__("pathlib").Path("/usr/bin/env"))
