"""A socketserver served on a thread of its own, stopped at once.

`serve_forever` wakes every 0.5 s to see whether it should stop, so each `shutdown()` waited up
to half a second: with the demo's listeners and the approval API, over a second of every engine
exit. Here the loop blocks until a connection comes, and `stop` marks it stopping and wakes it
with one connection of its own: it ends on that event, not on a poll.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from typing import Any


class Serving:
    """Serve `server` on a daemon thread from `start()` until `stop()`."""

    def __init__(self, server: socketserver.TCPServer, *, name: str | None = None) -> None:
        self.server = server
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        verify = server.verify_request

        def verify_request(request: Any, client_address: Any) -> bool:
            # once stopping, a connection (the wake-up among them) is closed, never handled
            return not self._stopping.is_set() and verify(request, client_address)

        server.verify_request = verify_request  # type: ignore[method-assign]

    def start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        self.server.timeout = None  # handle_request blocks until a connection: no polling
        while not self._stopping.is_set():
            self.server.handle_request()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            host, port = self.server.server_address[:2]
            with contextlib.suppress(OSError):  # the wake-up, closed unhandled (verify_request)
                socket.create_connection((str(host), int(port)), timeout=5).close()
            self._thread.join(timeout=5)
        self.server.server_close()
