from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from console.env import envbool, envint, envlist, envsecret, generated_secret


def test_it_reads_booleans_and_rejects_malformed_ones(monkeypatch):
    monkeypatch.setenv("FLAG", "yes")
    assert envbool("FLAG", False) is True
    monkeypatch.setenv("FLAG", "off")
    assert envbool("FLAG", True) is False
    monkeypatch.setenv("FLAG", "perhaps")
    with pytest.raises(ImproperlyConfigured, match="FLAG='perhaps' is not a boolean"):
        envbool("FLAG", True)


def test_it_rejects_malformed_numbers(monkeypatch):
    monkeypatch.setenv("COUNT", "12x")
    with pytest.raises(ImproperlyConfigured, match="not a whole number"):
        envint("COUNT", 1)
    monkeypatch.setenv("COUNT", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        envint("COUNT", 5, minimum=1)


def test_it_splits_lists(monkeypatch):
    monkeypatch.setenv("HOSTS", "a.example, b.example,,")
    assert envlist("HOSTS", []) == ["a.example", "b.example"]
    monkeypatch.delenv("HOSTS")
    assert envlist("HOSTS", ["x"]) == ["x"]


def test_it_reads_secrets_from_a_file(monkeypatch, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n")
    monkeypatch.delenv("MY_SECRET", raising=False)
    monkeypatch.setenv("MY_SECRET_FILE", str(secret_file))
    assert envsecret("MY_SECRET") == "from-a-file"
    monkeypatch.setenv("MY_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        envsecret("MY_SECRET")


def test_it_generates_a_secret_once_with_private_permissions(tmp_path):
    first = generated_secret(tmp_path, "key", lambda: "generated-1")
    second = generated_secret(tmp_path, "key", lambda: "generated-2")
    assert first == second == "generated-1"
    assert (tmp_path / "key").stat().st_mode & 0o777 == 0o600
