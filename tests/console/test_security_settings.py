"""Production settings (DEBUG false): secure cookies, HSTS and the proxy header from the environment, a required
SECRET_KEY, the shared cache. Each case loads the settings in a fresh interpreter with only its environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEY = "k3y-for-the-tests-0123456789-abcdefghijklmnop"
NAMES = ["DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY",
         "SECURE_CONTENT_TYPE_NOSNIFF", "SECURE_PROXY_SSL_HEADER", "SECURE_HSTS_SECONDS",
         "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_SSL_REDIRECT",
         "TRUSTED_PROXY_COUNT", "CACHES", "LOGIN_FAILURE_LIMIT", "LOGIN_LOCK_SECONDS", "MIDDLEWARE"]


def load(tmp_path, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items()
                   if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "SECRET_KEY_FILE", "DEBUG",
                                "CACHE_URL"} and not k.startswith(("SECURE_", "LOGIN_"))}
    environment.update({"CONSOLE_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "console.settings", **env})
    code = ("import json; from django.conf import settings; "
            f"print(json.dumps({{name: getattr(settings, name) for name in {NAMES!r}}}))")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True)


def settings_of(tmp_path, **env) -> dict:
    result = load(tmp_path, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_make_run_defaults_stay_development_friendly(tmp_path):
    values = settings_of(tmp_path)
    assert values["DEBUG"] is True
    assert values["SESSION_COOKIE_SECURE"] is False and values["CSRF_COOKIE_SECURE"] is False
    assert values["SECURE_HSTS_SECONDS"] == 0 and values["SECURE_PROXY_SSL_HEADER"] is None
    assert values["MIDDLEWARE"][0] == "console.security.SecurityHeadersMiddleware"
    assert values["CACHES"]["default"]["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
    assert values["LOGIN_FAILURE_LIMIT"] == 5 and values["LOGIN_LOCK_SECONDS"] == 900
    # The development key is generated once into the data folder.
    assert (tmp_path / "secret_key").exists()


def test_without_debug_cookies_are_secure_and_http_only(tmp_path):
    values = settings_of(tmp_path, DEBUG="false", SECRET_KEY=KEY)
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] is None
    assert not (tmp_path / "secret_key").exists()


def test_hsts_the_proxy_header_and_redirects_come_from_the_environment(tmp_path):
    values = settings_of(tmp_path, DEBUG="false", SECRET_KEY=KEY, SECURE_HSTS_SECONDS="31536000",
                         SECURE_HSTS_INCLUDE_SUBDOMAINS="true", SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
                         SECURE_SSL_REDIRECT="true", TRUSTED_PROXY_COUNT="1")
    assert values["SECURE_HSTS_SECONDS"] == 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["TRUSTED_PROXY_COUNT"] == 1


def test_the_secret_key_may_come_from_a_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(KEY + "\n")
    assert settings_of(tmp_path, DEBUG="false", SECRET_KEY_FILE=str(secret))["DEBUG"] is False


@pytest.mark.parametrize("env", [{}, {"SECRET_KEY": ""}, {"SECRET_KEY": "short"},
                                 {"SECRET_KEY": "django-insecure-" + "x" * 40}])
def test_without_debug_it_refuses_to_start_without_a_real_secret_key(tmp_path, env):
    result = load(tmp_path, DEBUG="false", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY (or SECRET_KEY_FILE) must be set" in result.stderr
    assert not (tmp_path / "secret_key").exists()


def test_redis_becomes_the_cache_when_cache_url_says_so(tmp_path):
    values = settings_of(tmp_path, CACHE_URL="redis://127.0.0.1:6379/9")
    assert values["CACHES"]["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert values["CACHES"]["default"]["LOCATION"] == "redis://127.0.0.1:6379/9"


@pytest.mark.parametrize(("env", "message"), [
    ({"CACHE_URL": "memcached://x"}, "CACHE_URL='memcached://x' is not supported"),
    ({"SECURE_HSTS_SECONDS": "a year"}, "SECURE_HSTS_SECONDS='a year' is not a whole number"),
    ({"LOGIN_FAILURE_LIMIT": "0"}, "LOGIN_FAILURE_LIMIT=0 must be at least 1"),
    ({"SESSION_COOKIE_SECURE": "perhaps"}, "SESSION_COOKIE_SECURE='perhaps' is not a boolean"),
])
def test_it_fails_loudly_on_malformed_security_values(tmp_path, env, message):
    result = load(tmp_path, **env)
    assert result.returncode != 0
    assert message in result.stderr
