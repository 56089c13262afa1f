"""Shared personas and clients. Every test that needs the engine uses the real one (see scripts/setup.sh)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

PASSWORD = "correct horse battery staple"


@pytest.fixture
def owner(db):
    return get_user_model().objects.create_user("alice", "alice@example.com", PASSWORD)


@pytest.fixture
def outsider(db):
    return get_user_model().objects.create_user("mallory", "mallory@example.com", PASSWORD)


@pytest.fixture
def staff(db):
    """An operator: may reach what the outbound policy keeps from users (console/netpolicy.py)."""
    return get_user_model().objects.create_user("root", "root@example.com", PASSWORD, is_staff=True)


@pytest.fixture
def staff_api(staff) -> APIClient:
    client = APIClient()
    client.force_authenticate(staff)
    return client


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def owner_api(owner) -> APIClient:
    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def pytest_sessionfinish(session, exitstatus):
    """Remove the temporary data folder tests/settings.py made for this run. Under pytest-xdist (make test-fast)
    the workers share the run's folder (each in its own sub-folder): only the controlling process, which finishes
    last, removes it."""
    if hasattr(session.config, "workerinput"):
        return
    folder = os.environ.get("CONSOLE_TEST_DATA_DIR", "")
    if os.path.basename(folder).startswith("console-test-"):
        shutil.rmtree(folder, ignore_errors=True)


# -- headless Chromium (Debian's package) driven by Playwright; one browser for the whole run ------------------

# Playwright's sync API runs an event loop in this thread; the test's database calls are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


@pytest.fixture
def screenshot(page, request):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


# -- `make test-fast`: the inner loop, with no engine, worker, registry or browser ----------------------------

# Fixtures that start or need a real component; a test using one (or marked engine/browser) is left out.
REAL_COMPONENT_FIXTURES = {
    "worker", "fleet", "hosts", "two_hosts", "images", "ssh_server", "open_registry", "htpasswd_registry",
    "token_registry", "console_registry", "docker_cli", "browser", "page", "screenshot", "live_server", "engine",
    "family", "layered", "unique_image", "built_images", "alice_app", "shared_busybox", "base_image_id",
}
# Markers of a real component (pyproject.toml lists them): a test carrying one is left out too.
REAL_COMPONENT_MARKERS = ("engine", "browser", "worker", "registry", "broker", "postgres")
REAL_COMPONENT_FOLDERS = ("e2e", "faults", "load")


def pytest_collection_modifyitems(config, items):
    if not os.environ.get("CONSOLE_TEST_FAST"):
        return
    kept, left_out = [], []
    for item in items:
        folder = Path(str(item.fspath)).relative_to(Path(__file__).parent).parts[0]
        real = (any(item.get_closest_marker(marker) for marker in REAL_COMPONENT_MARKERS)
                or folder in REAL_COMPONENT_FOLDERS or REAL_COMPONENT_FIXTURES & set(item.fixturenames))
        (left_out if real else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
