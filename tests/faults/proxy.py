"""A TCP proxy in front of a real registry that lets a test act at one precise moment of a push: when the engine
sends the manifest (every layer is uploaded by then), `on_manifest()` runs before the request goes on. A test
can kill the worker there, or stop the registry, without racing the engine."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable


class ManifestHookProxy:
    def __init__(self, upstream: str, on_manifest: Callable[[], None]) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.on_manifest = on_manifest
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.manifests = 0
        self._sockets: list[socket.socket] = []
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        for sock in [self.listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        self._sockets.append(upstream)
        threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()
        self._pipe(client, upstream, True)

    def _pipe(self, source: socket.socket, target: socket.socket, from_engine: bool) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                # Layer bytes are random: a request line naming a manifest is the engine's PUT of it.
                if from_engine and chunk.startswith(b"PUT /v2/") and b"/manifests/" in chunk.split(b"\r\n", 1)[0]:
                    self.manifests += 1
                    self.on_manifest()
                    # Whatever the hook did, this connection ends here, as when the registry went away.
                    break
                target.sendall(chunk)
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.close()
