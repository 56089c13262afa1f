"""manage.py registry_config: the console registry's config, signing key and certificate."""

from __future__ import annotations

import io
import json
import subprocess
import time

import requests
from django.core.management import call_command

from tests.fixtures.registry import free_port


def run(settings, tmp_path) -> str:
    out = io.StringIO()
    call_command("registry_config", stdout=out)
    return out.getvalue()


def test_it_writes_the_config_key_and_certificate_once(settings, tmp_path):
    settings.REGISTRY_DIR = tmp_path
    assert "written" in run(settings, tmp_path)
    key = (tmp_path / "token.key").read_bytes()
    assert (tmp_path / "token.key").stat().st_mode & 0o077 == 0
    config = json.loads((tmp_path / "config.yml").read_text())
    assert config["auth"]["token"] == {
        "realm": settings.REGISTRY_TOKEN_REALM, "service": settings.REGISTRY_SERVICE,
        "issuer": settings.REGISTRY_ISSUER, "rootcertbundle": str(tmp_path / "token.crt")}
    assert config["http"]["addr"] == settings.REGISTRY_ADDRESS
    assert "maintenance" not in config["storage"]
    # The same registry refusing every write, for garbage collection (registry/maintenance.py).
    read_only = json.loads((tmp_path / "config-readonly.yml").read_text())
    assert read_only["storage"].pop("maintenance") == {"readonly": {"enabled": True}}
    assert read_only == config
    assert "unchanged" in run(settings, tmp_path)
    assert (tmp_path / "token.key").read_bytes() == key
    settings.REGISTRY_ADDRESS = "127.0.0.1:5999"
    assert "written" in run(settings, tmp_path)
    assert (tmp_path / "token.key").read_bytes() == key


def test_docker_registry_serves_with_it(settings, tmp_path):
    settings.REGISTRY_DIR = tmp_path
    settings.REGISTRY_ADDRESS = f"127.0.0.1:{free_port()}"
    run(settings, tmp_path)
    process = subprocess.Popen(["docker-registry", "serve", str(tmp_path / "config.yml")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        response = None
        for _ in range(200):
            try:
                response = requests.get(f"http://{settings.REGISTRY_ADDRESS}/v2/", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None, "docker-registry refused the config"
                time.sleep(0.05)
        assert response is not None and response.status_code == 401
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer ")
        assert f'realm="{settings.REGISTRY_TOKEN_REALM}"' in challenge
    finally:
        process.terminate()
        process.wait(timeout=10)
