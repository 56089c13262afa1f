"""Two consoles on one machine, each started as `make run` starts it (scripts/run.sh, the embedded default: SQLite
and the filesystem broker) with its own CONSOLE_DATA_DIR, PORT and REGISTRY_ADDRESS: each serves its own sign-in
page, has its own users and sessions, its own worker, beat schedule, broker folders, registry and gunicorn control
socket, all in its own data folder, and neither writes into the repository. And a process that exits during
start-up is named, instead of the console saying it serves."""

from __future__ import annotations

import re
import shutil
import stat

import pytest
import requests

from tests.fixtures.make_run import migrate, repository_entries, stop

# A real worker (and the console's real registry) per console.
pytestmark = [pytest.mark.worker, pytest.mark.registry]
PLAIN = re.compile(r"\033\[[0-9;]*m")
PASSWORD = "Correct-Horse-42x"


def form_token(page: requests.Response) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


def sign_up(base: str, username: str) -> requests.Session:
    browser = requests.Session()
    form = browser.get(f"{base}/accounts/signup/", timeout=10)
    answer = browser.post(f"{base}/accounts/signup/", timeout=30, allow_redirects=False,
                          headers={"Referer": f"{base}/accounts/signup/"},
                          data={"csrfmiddlewaretoken": form_token(form), "username": username,
                                "email": f"{username}@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert answer.status_code == 302, answer.text[:2000]
    return browser


def signs_in(base: str, username: str) -> bool:
    browser = requests.Session()
    form = browser.get(f"{base}/accounts/login/", timeout=10)
    assert form.status_code == 200 and 'name="password"' in form.text
    answer = browser.post(f"{base}/accounts/login/", timeout=30, allow_redirects=False,
                          headers={"Referer": f"{base}/accounts/login/"},
                          data={"csrfmiddlewaretoken": form_token(form), "username": username, "password": PASSWORD})
    return answer.status_code == 302


def assert_own_files(console) -> None:
    """What each of the instance's processes writes, in its own data folder."""
    data = console.data
    output = PLAIN.sub("", console.output())
    worker_log = (data / "log" / "worker.log").read_text()
    assert " ready." in worker_log and "beat: Starting..." in worker_log, worker_log[-2000:]
    assert f"listening on 127.0.0.1:{console.registry_port}" in (data / "log" / "registry.log").read_text()
    assert list(data.glob("celerybeat-schedule*")), sorted(p.name for p in data.iterdir())
    for folder in ("queue", "processed", "control"):
        assert (data / "celery" / folder).is_dir(), folder
    # The worker's broadcast tables (kombu's ./control by default).
    assert list((data / "celery" / "control").iterdir())
    config = (data / "registry" / "config.yml").read_text()
    assert f'"addr": "127.0.0.1:{console.registry_port}"' in config
    assert f'"rootdirectory": "{data / "registry" / "data"}"' in config
    assert f"/127.0.0.1:{console.port}/registry/token/" in config
    assert (data / "registry" / "data").is_dir()
    # gunicorn's control socket (by default ~/.gunicorn/gunicorn.ctl, one per user).
    socket_path = data / "run" / "gunicorn.ctl"
    assert stat.S_ISSOCK(socket_path.stat().st_mode)
    assert f"Control socket listening at {socket_path}" in output
    assert (data / "run" / "console.pid").read_text().strip() == str(console.process.pid)
    assert (data / "static" / "staticfiles.json").is_file()
    assert f"data folder: {data}" in output


def test_two_consoles_side_by_side_keep_their_own_state(start_console):
    assert shutil.which("docker-registry"), "make test-setup installs docker-registry"
    before = repository_entries()
    first, second = start_console("first"), start_console("second")
    migrate(first, second)
    first.start(), second.start()
    first.wait_until_serving(), second.wait_until_serving()

    # Its own users: one signed up on the first is unknown to the second, which may take the name for its own.
    alice_first = sign_up(first.url, "alice")
    assert signs_in(first.url, "alice")
    assert not signs_in(second.url, "alice")
    # Its own sessions and secret key: the first's session cookie means nothing to the second.
    cookie = alice_first.cookies.get("sessionid")
    foreign = requests.get(f"{second.url}/", cookies={"sessionid": cookie}, timeout=10, allow_redirects=False)
    assert foreign.status_code == 302 and "/accounts/login/" in foreign.headers["Location"]
    assert requests.get(f"{first.url}/", cookies={"sessionid": cookie}, timeout=10).status_code == 200
    sign_up(second.url, "alice")
    assert (first.data / "secret_key").read_text() != (second.data / "secret_key").read_text()

    # Its own registry, which sends `docker login` to its own console's token endpoint.
    for console in (first, second):
        challenge = requests.get(f"http://127.0.0.1:{console.registry_port}/v2/", timeout=10)
        assert challenge.status_code == 401
        assert f'realm="http://127.0.0.1:{console.port}/registry/token/"' in challenge.headers["WWW-Authenticate"]
        assert_own_files(console)

    stop(first, second)
    # Ctrl-C's status: run.sh stopped what it started and waited for it.
    assert (first.process.returncode, second.process.returncode) == (130, 130)
    # Nothing written into the repository (ignored or not): the consoles wrote only in their data folders.
    assert repository_entries() - before == set()
    # And nothing is left holding a socket: gunicorn removed its control socket, the ports are free.
    for console in (first, second):
        assert not (console.data / "run" / "gunicorn.ctl").exists()


@pytest.fixture
def exiting_registry_bin(tmp_path):
    """A docker-registry that fails as one whose port was taken after the check fails: at once, with a message."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "docker-registry").write_text(
        "#!/bin/sh\necho 'listen tcp 127.0.0.1:5000: bind: address already in use' >&2\nexit 3\n")
    (folder / "docker-registry").chmod(0o755)
    return folder


@pytest.mark.parametrize("who", ["registry", "web server"])
def test_a_process_that_exits_during_start_up_is_named_and_nothing_is_served(start_console, exiting_registry_bin, who):
    if who == "registry":
        console = start_console("failing")
        console.env["PATH"] = f"{exiting_registry_bin}:{console.env['PATH']}"
    else:
        # gunicorn.conf.py cannot read it: gunicorn exits before it listens.
        console = start_console("failing", WEB_CONCURRENCY="two")
    migrate(console)
    console.start()
    status = console.finish(seconds=120)
    output = PLAIN.sub("", console.output())
    assert status == 1, output
    assert f"error: the {who} exited during start-up" in output, output
    assert "==> console on" not in output
    if who == "registry":
        assert "==> registry on" not in output
        assert "exit status 3" in output and "bind: address already in use" in output
    else:
        assert "exit status 1" in output and "WEB_CONCURRENCY" in output
