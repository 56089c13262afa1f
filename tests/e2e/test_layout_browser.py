"""Pages that fit their window, in a real Chromium: every page reached from the navigation, at 1280 px and at
390 px, is no wider than the window (wide tables and logs scroll inside their own boxes); the menu folds at the
narrow width; a finished build's log opens at its end. And the small things that make forms safe: a refresh after
creating a token creates no second one, a copy button copies, a destructive form asks first.

Screenshots of every page at both widths go to test-artifacts/screenshots/ (the `screenshot` fixture)."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from builds.models import Build, BuildStep, Image, Layer, Repository
from builds.services import repositories as build_services
from console import jobs
from console.accounts.models import AccessToken
from console.accounts.services import create_access_token
from fleet.models import Deployment, DeploymentTarget, Host
from tests.builds.archive_factory import HELLO_TREE, tar_bytes
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 390)
# Text with no place to break: what made the pages wide (a digest, a long RUN line, a log line of JSON).
UNBROKEN = "x" * 40 + hashlib.sha256(b"wide").hexdigest() * 6
# Pages the crawl does not open: other origins' apps, the API and the admin, and whatever only answers a post.
SKIP = re.compile(r"^/(api|admin|static)/|/(delete|remove|revoke|rollback|cancel|rebuild|check|test|sync)/?$")
MAX_PAGES = 60


def log_in(page, base_url: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("main form.form button[type=submit]")
    page.wait_for_url(f"{base_url}/")


@pytest.fixture
def little_world(owner):
    """A little of everything the pages show, made in the database: a repository with an uploaded source, a
    finished build with steps and a long log, its image with layers, a host and a deployment to it."""
    repository = build_services.create_repository(owner, "hello", "The example app")
    source = build_services.add_archive_source(repository, io.BytesIO(tar_bytes(HELLO_TREE, "gz")), "hello.tar.gz")
    now = timezone.now()
    build = Build.objects.create(owner=owner, repository=repository, source=source, tags=["hello:1", "hello:latest"],
                                 status="succeeded", step_count=3, image_id="sha256:" + "a" * 64,
                                 queued_at=now - timedelta(minutes=2), started_at=now - timedelta(minutes=2),
                                 finished_at=now - timedelta(minutes=1), build_args={"LONG": UNBROKEN})
    instructions = ["FROM busybox:1.36", f"RUN echo {UNBROKEN} > /srv/index.html", "CMD [\"httpd\", \"-f\"]"]
    for number, instruction in enumerate(instructions, start=1):
        BuildStep.objects.create(build=build, number=number, instruction=instruction, status="succeeded",
                                 started_at=now - timedelta(minutes=2), finished_at=now - timedelta(minutes=1))
    jobs.append_log(build, [f"Step {n}/3 : {text}" for n, text in enumerate(instructions, start=1)]
                    + [f"line {n} of the build" for n in range(200)] + [UNBROKEN, "Build succeeded."])
    image = Image.objects.create(owner=owner, repository=repository, build=build, image_id=build.image_id,
                                 tags=["hello:1", "hello:latest"], size=4_200_000, created=now,
                                 digests=[f"localhost:5000/alice/hello@sha256:{'b' * 64}"],
                                 labels={"org.opencontainers.image.source": UNBROKEN},
                                 config={"Cmd": ["httpd", "-f", "-p", "8080"], "Env": [f"LONG={UNBROKEN}"]})
    for index, created_by in enumerate(["/bin/sh -c #(nop) ADD file:" + "c" * 64 + " in / ",
                                        f"/bin/sh -c echo {UNBROKEN} > /srv/index.html"]):
        Layer.objects.create(image=image, index=index, diff_id=f"sha256:{index}" + "d" * 63, created_by=created_by,
                             size=2_100_000)
    # An address nothing answers on: the host page says so at once instead of waiting for an engine.
    host = Host.objects.create(owner=owner, name="edge-1", url="tcp://127.0.0.1:9", status="down",
                               status_reason="connection refused")
    released = Deployment.objects.create(owner=owner, name="hello", image="hello:1", image_id=image.image_id,
                                         status="succeeded", ports={"8080": 18080}, env={"LONG": UNBROKEN},
                                         queued_at=now - timedelta(minutes=1), finished_at=now)
    DeploymentTarget.objects.create(deployment=released, host=host, host_name=host.name, status="succeeded",
                                    url="http://127.0.0.1:18080/")
    failed = Deployment.objects.create(owner=owner, name="hello", image="hello:1", image_id=image.image_id,
                                       status="failed", error=UNBROKEN, queued_at=now, finished_at=now)
    DeploymentTarget.objects.create(deployment=failed, host=host, host_name=host.name, status="failed",
                                    error=UNBROKEN)
    jobs.append_log(released, [f"edge-1: {UNBROKEN}", "edge-1: started"])
    jobs.append_log(failed, [f"edge-1: {UNBROKEN}"] * 3)
    return {"repository": repository, "source": source, "build": build, "image": image, "host": host,
            "deployment": failed}


def width_of(page) -> dict:
    """How wide the document is against the window, with the elements that reach past the window's right edge
    (to say which box did not keep its content)."""
    return page.evaluate("""() => {
        const inner = window.innerWidth;
        const wide = [];
        const clipped = (el) => {
            for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
                if (getComputedStyle(up).overflowX !== "visible") { return true; }
            }
            return false;
        };
        for (const el of document.body.querySelectorAll("*")) {
            const box = el.getBoundingClientRect();
            if (box.right > inner + 1 && wide.length < 5 && !clipped(el)) {
                const classes = typeof el.className === "string" ? el.className.trim() : "";
                wide.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
                          (classes ? "." + classes.replace(/ +/g, ".") : "") + " " + Math.round(box.right));
            }
        }
        return {scroll: document.documentElement.scrollWidth, inner: inner, wide: wide};
    }""")


def crawl(page, base_url: str) -> list[str]:
    """The pages of the navigation, then the pages their main content links to, then those pages' links: paths
    on the console, once each (the query left off), in the order found."""
    page.goto(f"{base_url}/")
    found = [urlsplit(href).path for href in page.eval_on_selector_all(
        "header nav a", "links => links.map(link => link.href)")]
    queue = list(dict.fromkeys(found))
    seen = set(queue)
    for _depth in range(2):
        next_queue = []
        for path in queue:
            page.goto(f"{base_url}{path}")
            for href in page.eval_on_selector_all("main a[href]", "links => links.map(link => link.href)"):
                parts = urlsplit(href)
                if parts.netloc != urlsplit(base_url).netloc or SKIP.search(parts.path) or parts.path in seen:
                    continue
                seen.add(parts.path)
                found.append(parts.path)
                next_queue.append(parts.path)
        queue = next_queue
    return list(dict.fromkeys(found))[:MAX_PAGES]


def test_every_page_fits_its_window_at_1280_and_at_390(live_server, page, owner, little_world, screenshot):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server.url)
    paths = crawl(page, live_server.url)
    # The crawl reached every kind of page the little world holds.
    for name, prefix in (("repository", "/repositories/"), ("source", "/sources/"), ("build", "/builds/"),
                         ("image", "/images/"), ("host", "/hosts/"), ("deployment", "/deployments/")):
        assert f"{prefix}{little_world[name].pk}/" in paths, (name, paths)
    assert "/images/tree/" in paths and "/accounts/tokens/" in paths

    too_wide = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for path in paths:
            response = page.goto(f"{live_server.url}{path}")
            assert response.status < 500, path
            page.wait_for_load_state("load")
            measured = width_of(page)
            if measured["scroll"] > measured["inner"]:
                too_wide.append(f"{path} at {width}: {measured['scroll']} px ({', '.join(measured['wide'])})")
            screenshot(f"{width}{path.rstrip('/').replace('/', '-') or '-dashboard'}")
    assert too_wide == []
    assert errors == []


def test_the_menu_folds_behind_a_button_at_390(live_server, page, owner):
    log_in(page, live_server.url)
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{live_server.url}/")
    menu_link = page.locator("header nav.mainnav >> text=Deployments")
    assert not menu_link.is_visible()
    page.click("header label.nav-toggle-label")
    assert menu_link.is_visible()
    menu_link.click()
    page.wait_for_url(f"{live_server.url}/deployments/")
    page.set_viewport_size({"width": 1280, "height": 800})
    assert not page.locator("header label.nav-toggle-label").is_visible()
    assert page.locator("header nav.mainnav >> text=Deployments").is_visible()


def test_a_finished_builds_log_opens_at_its_end(live_server, page, owner, little_world):
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/builds/{little_world['build'].pk}/")
    box = page.locator("#build-log")
    scroll = box.evaluate("box => [box.scrollTop, box.clientHeight, box.scrollHeight]")
    assert scroll[2] > scroll[1], "the log is long enough to scroll"
    assert scroll[0] + scroll[1] >= scroll[2] - 2, scroll
    last_line = page.locator("#build-log").evaluate(
        "box => { const r = document.createRange(); r.selectNodeContents(box); const rects = r.getClientRects();"
        " const last = rects[rects.length - 1]; const b = box.getBoundingClientRect();"
        " return last.bottom <= b.bottom + 1 && last.top >= b.top - 1; }")
    assert last_line, "the last line (Build succeeded.) is in view"


def test_a_refresh_after_creating_a_token_creates_no_second_one(live_server, page, owner, screenshot):
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/accounts/tokens/")
    page.fill("#id_name", "laptop")
    page.click("main form.form button[type=submit]")
    page.wait_for_selector("#new-token")
    raw = page.locator("#new-token-value").inner_text().strip()
    assert raw.startswith("cst_")
    screenshot("token-created")

    page.reload()
    page.wait_for_load_state("load")
    assert page.locator("#new-token").count() == 0
    assert raw not in page.content()
    assert AccessToken.objects.filter(user=owner).count() == 1
    assert page.locator("#tokens tbody tr").count() == 1


def test_the_copy_button_puts_the_new_token_on_the_clipboard(live_server, page, owner):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/accounts/tokens/")
    page.fill("#id_name", "ci")
    page.click("main form.form button[type=submit]")
    raw = page.locator("#new-token-value").inner_text().strip()
    page.click("#copy-token")
    page.locator("#copy-token", has_text="Copied").wait_for()
    assert page.evaluate("() => navigator.clipboard.readText()") == raw
    # And it says what it does again a moment later.
    page.locator("#copy-token", has_text="Copy").wait_for()
    assert page.locator("#copy-token").inner_text() == "Copy"

    # A button that carries its text (data-copy), as the image page's docker pull/run commands do, added after
    # the page loaded: actions.js listens on the document, so it copies too.
    page.evaluate("""() => {
        const button = document.createElement("button");
        button.type = "button"; button.className = "copy"; button.id = "copy-command"; button.textContent = "Copy";
        button.dataset.copy = "docker run --rm -p 8080:8080 hello:1";
        document.querySelector("main").appendChild(button);
    }""")
    page.click("#copy-command")
    page.locator("#copy-command", has_text="Copied").wait_for()
    assert page.evaluate("() => navigator.clipboard.readText()") == "docker run --rm -p 8080:8080 hello:1"


def test_revoking_a_token_asks_first_and_cancelling_keeps_it(live_server, page, owner):
    token, _ = create_access_token(owner, "laptop")
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/accounts/tokens/")
    questions: list[str] = []

    def dismiss(dialog):
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.click("#tokens >> text=Revoke")
    assert questions and questions[0].startswith("Revoke the token “laptop”?")
    page.wait_for_load_state("load")
    assert page.url == f"{live_server.url}/accounts/tokens/"
    assert AccessToken.objects.filter(pk=token.pk).exists()

    def accept(dialog):
        questions.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    with page.expect_navigation():
        page.click("#tokens >> text=Revoke")
    assert len(questions) == 2
    assert not AccessToken.objects.filter(pk=token.pk).exists()
    assert "was revoked" in page.locator(".messages").inner_text()


def test_deleting_a_repository_asks_once_and_cancelling_keeps_it(live_server, page, owner, little_world):
    repository = little_world["repository"]
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/repositories/{repository.pk}/")
    questions: list[str] = []

    def dismiss(dialog):
        questions.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.click("main .page-head >> text=Delete")
    page.wait_for_load_state("load")
    assert questions == ["Delete hello and all its sources?"]  # asked once, not by two scripts
    assert Repository.objects.filter(pk=repository.pk).exists()


def test_the_measure_names_a_box_wider_than_the_window(live_server, page, owner):
    """The width check above can fail: a box made wider than the window is measured and named."""
    log_in(page, live_server.url)
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{live_server.url}/accounts/tokens/")
    assert width_of(page)["scroll"] <= 390
    page.evaluate("() => { document.querySelector('main h1').style.width = '900px'; }")
    measured = width_of(page)
    assert measured["scroll"] > measured["inner"] == 390
    assert any(entry.startswith("h1 ") for entry in measured["wide"]), measured


def at_end(locator) -> bool:
    return locator.evaluate("box => box.scrollTop + box.clientHeight >= box.scrollHeight - 2")


def test_a_running_builds_log_follows_its_end_and_the_finished_page_opens_there(live_server, page, owner,
                                                                                 little_world):
    """The real page against the console's API: lines written while the page is open scroll into view, and the
    page reloaded when the build ends shows the last line."""
    build = Build.objects.create(owner=owner, repository=little_world["repository"],
                                 source=little_world["source"], status="running", step_count=3,
                                 started_at=timezone.now())
    jobs.append_log(build, ["Step 1/3 : FROM busybox:1.36"])
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/builds/{build.pk}/")
    box = page.locator("#build-log")

    jobs.append_log(build, [f"running line {n}" for n in range(300)])
    page.locator("#build-log", has_text="running line 299").wait_for()
    assert at_end(box)

    jobs.append_log(build, ["Build succeeded."])
    with page.expect_navigation(timeout=20000):  # build.js reloads the page once the build has ended
        Build.objects.filter(pk=build.pk).update(status="succeeded", finished_at=timezone.now())
    page.wait_for_load_state("load")
    assert page.locator("#build-log").inner_text().rstrip().endswith("Build succeeded.")
    assert at_end(page.locator("#build-log"))


def test_a_running_deployments_log_follows_its_end(live_server, page, owner, little_world):
    deployment = Deployment.objects.create(owner=owner, name="hello", image="hello:1", status="running",
                                           started_at=timezone.now())
    DeploymentTarget.objects.create(deployment=deployment, host=little_world["host"], host_name="edge-1",
                                    status="running")
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/deployments/{deployment.pk}/")
    jobs.append_log(deployment, [f"edge-1: step {n} {UNBROKEN}" for n in range(80)])
    page.locator("#log", has_text="step 79").wait_for()
    box = page.locator("#log")
    assert box.evaluate("box => box.scrollHeight > box.clientHeight"), "the log scrolls inside its box"
    assert at_end(box)
    assert width_of(page)["scroll"] <= width_of(page)["inner"]
