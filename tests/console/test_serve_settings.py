"""`make run` without DEBUG (scripts/run.sh): the embedded flag lets the console use the key generated into the data
folder and run.sh's environment keeps the cookies off Secure over plain http; production (DEBUG off, no flag) stays
as strict as before. Each case loads the settings in a fresh interpreter with only its environment."""

from __future__ import annotations

import pytest

from tests.console.test_security_settings import KEY, load, settings_of

RUN_SH_ENVIRONMENT = {"DEBUG": "false", "CONSOLE_EMBEDDED": "true", "SESSION_COOKIE_SECURE": "false",
                      "CSRF_COOKIE_SECURE": "false"}


def test_make_runs_environment_serves_without_debug_with_the_generated_key(tmp_path):
    values = settings_of(tmp_path, **RUN_SH_ENVIRONMENT)
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] is False and values["CSRF_COOKIE_SECURE"] is False
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    key = (tmp_path / "secret_key").read_text().strip()
    assert len(key) >= 32
    # The same key on the next start (and in the worker): sessions survive a restart.
    settings_of(tmp_path, **RUN_SH_ENVIRONMENT)
    assert (tmp_path / "secret_key").read_text().strip() == key


def test_the_embedded_flag_alone_keeps_cookies_secure(tmp_path):
    # The flag is about the key only: cookies leave Secure only where run.sh (or an operator) says so.
    values = settings_of(tmp_path, DEBUG="false", CONSOLE_EMBEDDED="true")
    assert values["SESSION_COOKIE_SECURE"] is True and values["CSRF_COOKIE_SECURE"] is True


@pytest.mark.parametrize("key", ["short", "django-insecure-" + "x" * 40])
def test_a_weak_key_is_refused_even_embedded(tmp_path, key):
    result = load(tmp_path, SECRET_KEY=key, **RUN_SH_ENVIRONMENT)
    assert result.returncode != 0
    assert "SECRET_KEY (or SECRET_KEY_FILE) must be set" in result.stderr


def test_a_given_key_wins_over_the_generated_one(tmp_path):
    assert settings_of(tmp_path, SECRET_KEY=KEY, **RUN_SH_ENVIRONMENT)["DEBUG"] is False
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize("flag", [None, "false"])
def test_production_without_the_flag_still_needs_a_key(tmp_path, flag):
    env = {"DEBUG": "false", **({"CONSOLE_EMBEDDED": flag} if flag else {})}
    result = load(tmp_path, **env)
    assert result.returncode != 0
    assert "SECRET_KEY (or SECRET_KEY_FILE) must be set" in result.stderr
    assert not (tmp_path / "secret_key").exists()
