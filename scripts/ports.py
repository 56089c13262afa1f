#!/usr/bin/env python3
"""Whether `make run` may listen where it is told to, before it starts anything (scripts/run.sh).

    ports.py --check VARIABLE ADDRESS WHAT [--check ...]

Each ADDRESS (host:port, or a bare port on 127.0.0.1) is bound as its server would bind it. A port that is taken is
named with the variable that chose it, what holds it when this machine can tell, and a free port to use instead;
the exit status is then 1. The standard library only: it runs before the set-up has made the virtual environment.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from pathlib import Path

# TCP's LISTEN state in /proc/net/tcp.
LISTEN = "0A"
# How far above a taken port to look for a free one to suggest.
SUGGESTION_RANGE = 100


class BadAddress(ValueError):
    pass


def parse(variable: str, address: str) -> tuple[str, int]:
    """host:port (IPv6 in brackets), or a bare port on 127.0.0.1 (PORT: gunicorn's HOST is 127.0.0.1 under make run);
    an empty host is every address."""
    host, sep, port = address.rpartition(":")
    if not sep:
        host = "127.0.0.1"
    host = host.strip("[]")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise BadAddress(f"{variable}={address} does not name a port (1-65535)")
    return host, int(port)


def bind_error(host: str, port: int) -> OSError | None:
    """The error binding host:port gives, or None when it is free. SO_REUSEADDR as gunicorn and the registry set it,
    so a port whose last connections are in TIME_WAIT counts as free, as it is for them."""
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        return OSError(errno.EADDRNOTAVAIL, f"{host} does not resolve ({exc.strerror})")
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            return exc
    return None


def listening_inodes(port: int) -> set[str]:
    """The inodes of the sockets listening on `port`, from the kernel's tables (what `ss -ltn` reads)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def holders(port: int) -> list[str]:
    """Who listens on `port`: 'name (pid N: command line)' for each process this user may look into, oldest first
    (a server's workers share its socket)."""
    sockets = {f"socket:[{inode}]" for inode in listening_inodes(port)}
    if not sockets:
        return []
    found = []
    for process in sorted(Path("/proc").iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else 0):
        if not process.name.isdigit():
            continue
        try:
            if not any(os.readlink(fd) in sockets for fd in (process / "fd").iterdir()):
                continue
            name = (process / "comm").read_text().strip()
            command = " ".join((process / "cmdline").read_bytes().decode(errors="replace").replace("\0", " ").split())
        except OSError:
            continue
        command = command if len(command) <= 120 else command[:117] + "..."
        found.append(f"{name} (pid {process.name}: {command})")
    return found


def suggestion(host: str, port: int, avoid: set[int]) -> int | None:
    for candidate in range(port + 1, min(port + SUGGESTION_RANGE, 65535) + 1):
        if candidate not in avoid and bind_error(host, candidate) is None:
            return candidate
    return None


def problems(checks: list[tuple[str, str, str]]) -> list[str]:
    parsed = []
    found = []
    for variable, address, what in checks:
        try:
            parsed.append((variable, address, what, *parse(variable, address)))
        except BadAddress as exc:
            found.append(str(exc))
    ports = {port for *_, port in parsed}
    seen: dict[int, str] = {}
    for variable, address, what, host, port in parsed:
        if port in seen:
            found.append(f"{variable}={address} and {seen[port]} name the same port {port}: give each its own")
            continue
        seen[port] = f"{variable}={address}"
        error = bind_error(host, port)
        if error is None:
            continue
        shown = f"{host or '*'}:{port}"
        if error.errno != errno.EADDRINUSE:
            found.append(f"{what} cannot listen on {shown} ({variable}={address}): {error.strerror}")
            continue
        held_by = holders(port)
        sharing = f" and {len(held_by) - 1} more process(es) sharing its socket" if len(held_by) > 1 else ""
        who = f"held by {held_by[0]}{sharing}" if held_by else (
            "what holds it could not be found (a socket bound but not listening, or another user's process; "
            f"ss -ltnp 'sport = :{port}' may tell)")
        instead = suggestion(host, port, ports)
        if instead is None:
            fix = f"another {variable}"
        else:
            fix = f"{variable}={address.rpartition(':')[0]}:{instead}" if ":" in address else f"{variable}={instead}"
        found.append(f"port {port} ({variable}={address}, for {what}) is already in use on {shown}: {who}. "
                     f"Stop that, or start this console with {fix}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", nargs=3, action="append", default=[], metavar=("VARIABLE", "ADDRESS", "WHAT"))
    found = problems(parser.parse_args().check)
    for problem in found:
        print(f"\033[31merror:\033[0m {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
