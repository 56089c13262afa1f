"""How a BuildKit build runs its CLI: arguments, environment, private files, abort and clean-up, checked with a
shell script in place of the Docker CLI (no engine: the Engine objects here are never connected)."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from console.engine import Engine, EngineBadRequest, EngineError, SSHMaterial, TLSMaterial
from console.engine.buildkit import ABORT_GRACE_SECONDS, BuildkitRequest, BuildkitStream, Message, VertexLog

# Reads the context, then prints what it was given: each line is a Message of the stream (not a progress line).
REPORT = r"""
cat > "$HOME/context"
echo "args $*"
echo "context $(wc -c < "$HOME/context")"
for name in DOCKER_HOST DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_BUILDKIT DOCKER_CONFIG; do
  echo "env $name=$(printenv $name)"
done
echo "envnames $(env | cut -d= -f1 | sort | tr '\n' ' ')"
echo "ssh $(command -v ssh)"
for file in "$DOCKER_CERT_PATH"/*.pem "$HOME"/../secrets/* "$HOME"/../ssh/*; do
  [ -f "$file" ] && echo "file $(basename "$file") $(stat -c %a "$file") $(cat "$file" | head -c 40 | tr '\n' ' ')"
done
true
"""


def script(text: str) -> list[str]:
    return ["/bin/sh", "-c", text, "cli"]


def messages(stream: BuildkitStream) -> list[str]:
    return [event.text for event in stream if isinstance(event, Message)]


def request(**fields) -> BuildkitRequest:
    return BuildkitRequest(context=fields.pop("context", [b"tar-", b"bytes"]), **fields)


def test_it_passes_every_option_as_one_argument_and_secrets_as_files_only():
    value = "the-secret-value"
    stream = BuildkitStream(
        Engine("unix:///run/some.sock"),
        request(dockerfile="sub/Dockerfile", tags=["console-test/a:1", "console-test/a:latest"],
                build_args={"A": "-x y"}, labels={"io.console.build": "7", "k": "v w"}, target="final",
                no_cache=True, secrets={"api_token": value}, cache_from=["registry:5000/a:cache"], inline_cache=True),
        script(REPORT),
    )
    folder = Path(stream._folder)
    lines = messages(stream)
    args = next(line for line in lines if line.startswith("args "))
    assert args == (
        f"args --progress=plain --iidfile={folder}/iid --file=sub/Dockerfile --tag=console-test/a:1 "
        "--tag=console-test/a:latest --label=io.console.build=7 --label=k=v w --build-arg=A=-x y "
        "--build-arg=BUILDKIT_INLINE_CACHE=1 --cache-from=registry:5000/a:cache --target=final --no-cache "
        f"--secret=id=api_token,src={folder}/secrets/secret-0 -"
    )
    assert "context 9" in lines
    assert "env DOCKER_HOST=unix:///run/some.sock" in lines and "env DOCKER_BUILDKIT=1" in lines
    assert f"env DOCKER_CONFIG={folder}/home/.docker" in lines
    assert f"file secret-0 600 {value}" in lines
    assert not [line for line in lines if value in line and not line.startswith("file ")]
    # The worker's environment is not passed on (only PATH, LANG and the CLI's own variables; sh adds PWD).
    assert "envnames DOCKER_BUILDKIT DOCKER_CONFIG DOCKER_HOST HOME LANG PATH PWD" in lines
    assert stream.returncode == 0 and stream.image_id == "" and stream.error
    assert not folder.exists()


def test_a_tls_engine_gets_its_material_in_files_the_cli_reads():
    engine = Engine("tcp://10.0.0.1:2376", tls=TLSMaterial("CA PEM\n", "CERT PEM\n", "KEY PEM\n"))
    stream = BuildkitStream(engine, request(), script(REPORT))
    folder = stream._folder
    lines = messages(stream)
    assert "env DOCKER_HOST=tcp://10.0.0.1:2376" in lines and "env DOCKER_TLS_VERIFY=1" in lines
    assert f"env DOCKER_CERT_PATH={folder}/tls" in lines
    assert {"file ca.pem 600 CA PEM", "file cert.pem 600 CERT PEM", "file key.pem 600 KEY PEM"} <= set(lines)
    assert not Path(folder).exists()


def test_registry_logins_go_to_a_private_config_the_cli_reads_and_nowhere_else():
    password = "signed-credential-value"
    report = 'stat -c "config %a" "$DOCKER_CONFIG/config.json"; stat -c "folder %a" "$DOCKER_CONFIG"\n' \
             'echo "json $(cat "$DOCKER_CONFIG/config.json")"\necho "args $*"\ncat > /dev/null\n'
    stream = BuildkitStream(Engine("unix:///run/some.sock"),
                            request(cache_from=["10.0.0.5:5000/console-cache/r1:k"],
                                    registry_logins={"10.0.0.5:5000": ("console-cache", password)}),
                            script(report))
    folder = Path(stream._folder)
    lines = messages(stream)
    assert "config 600" in lines and "folder 700" in lines
    config = json.loads(next(line for line in lines if line.startswith("json "))[5:])
    assert config == {"auths": {"10.0.0.5:5000": {
        "auth": base64.b64encode(f"console-cache:{password}".encode()).decode()}}}
    args = next(line for line in lines if line.startswith("args "))
    assert password not in args and "--cache-from=10.0.0.5:5000/console-cache/r1:k" in args
    assert not folder.exists()


def host_key_line() -> str:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def test_an_ssh_engine_is_reached_with_its_own_key_and_recorded_host_key_only():
    host_key = host_key_line()
    engine = Engine("ssh://root@10.0.0.2:2222", ssh=SSHMaterial("PRIVATE KEY TEXT", host_key))
    shown = 'cat "$HOME/../ssh/config" "$HOME/../ssh/known_hosts" "$(command -v ssh)"'
    stream = BuildkitStream(engine, request(), script(REPORT + shown))
    folder = stream._folder
    lines = messages(stream)
    assert f"ssh {folder}/bin/ssh" in lines
    assert "file key 600 PRIVATE KEY TEXT" in lines
    assert f"[10.0.0.2]:2222 {host_key}" in lines
    for option in (f"IdentityFile {folder}/ssh/key", "IdentitiesOnly yes", "StrictHostKeyChecking yes",
                   f"UserKnownHostsFile {folder}/ssh/known_hosts", "BatchMode yes", "ProxyCommand none"):
        assert option in lines
    assert f"exec /usr/bin/ssh -F {folder}/ssh/config \"$@\"" in lines
    assert not Path(folder).exists()


def test_an_ssh_engine_without_a_recorded_host_key_is_refused():
    engine = Engine("ssh://root@10.0.0.2:2222", ssh=SSHMaterial("KEY", ""))
    with pytest.raises(EngineError, match="host key"):
        BuildkitStream(engine, request(), script(REPORT))


def test_a_secret_name_that_is_not_an_id_is_refused_and_nothing_is_left():
    before = set(os.listdir("/dev/shm"))
    with pytest.raises(EngineBadRequest):
        BuildkitStream(Engine("unix:///x.sock"), request(secrets={"a,src=/etc/passwd": "v"}), script(REPORT))
    assert set(os.listdir("/dev/shm")) == before


def test_abort_kills_a_cli_that_ignores_sigint():
    stream = BuildkitStream(Engine("unix:///x.sock"), request(),
                            script("trap '' INT; cat >/dev/null; echo '#1 [internal] x'; echo '#1 0.1 up'; sleep 60"))
    started = None
    for event in stream:
        if isinstance(event, VertexLog):
            started = time.monotonic()
            stream.abort()
    assert ABORT_GRACE_SECONDS - 0.5 < time.monotonic() - started < ABORT_GRACE_SECONDS + 3
    assert stream.returncode == -9 and stream.error == "The build was stopped."
    assert not Path(stream._folder).exists()


def test_leaving_the_iteration_early_stops_the_cli():
    stream = BuildkitStream(Engine("unix:///x.sock"), request(),
                            script("cat >/dev/null; echo '#1 [internal] x'; echo '#1 0.1 up'; sleep 60"))
    for event in stream:
        if isinstance(event, VertexLog):
            break
    assert stream.returncode is not None and stream.aborted.is_set()
    assert not Path(stream._folder).exists()


def test_a_context_that_fails_kills_the_cli_and_is_raised():
    def broken():
        yield b"start of a tar"
        raise OSError("the source store failed")

    stream = BuildkitStream(Engine("unix:///x.sock"), request(context=broken()),
                            script("cat >/dev/null; echo complete-context; sleep 5"))
    started = time.monotonic()
    with pytest.raises(OSError, match="source store"):
        list(stream)
    assert time.monotonic() - started < 3
    assert stream.returncode == -9 and stream.error == "The build's context could not be sent."


def test_closing_without_reading_ends_the_cli_and_removes_the_folder():
    stream = BuildkitStream(Engine("unix:///x.sock"), request(), script("sleep 60"))
    stream.close()
    assert stream.returncode == -9 and not Path(stream._folder).exists()


def test_a_missing_cli_is_an_engine_error():
    with pytest.raises(EngineError, match="could not be run"):
        BuildkitStream(Engine("unix:///x.sock"), request(), ["/nonexistent/docker", "build"])


def test_a_cli_started_by_a_thread_that_ends_keeps_running():
    # PR_SET_PDEATHSIG follows the thread that forks: the CLI is started by one that lives as long as the process.
    started = []
    thread = threading.Thread(target=lambda: started.append(
        BuildkitStream(Engine("unix:///x.sock"), request(), script("cat >/dev/null; sleep 30"))))
    thread.start()
    thread.join()
    time.sleep(0.5)
    stream = started[0]
    assert stream._process.poll() is None
    stream.close()
    assert stream.returncode == -9
