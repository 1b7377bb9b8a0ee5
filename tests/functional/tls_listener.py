"""A tiny TLS service for the install-script tests: it behaves like nginx on reload.

It serves the certificate and key found at two paths on 127.0.0.1 (port chosen by the OS).
It rereads them only when a reload is signalled, by the appearance of a flag file (the test's
Reload command touches it and waits until the listener removes it, after loading); a reload
that cannot load the files keeps the old ones, as nginx does. Every wait is bounded, and
`close()` stops the thread.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
from pathlib import Path
from types import TracebackType

_POLL_SECONDS = 0.05


class TlsListener:
    def __init__(
        self, cert_path: Path, key_path: Path, reload_flag: Path, reload_delay: float = 0.0
    ) -> None:
        self.cert_path = cert_path
        self.reload_delay = reload_delay  # seconds between the signal and the new files
        self.key_path = key_path
        self.reload_flag = reload_flag
        self.loaded: list[str] = []  # fingerprint of the certificate each good reload loaded
        self.failed_reloads = 0
        self._context = self._load()
        self._stop = threading.Event()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.settimeout(_POLL_SECONDS)
        self.port: int = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="tls-listener", daemon=True)
        self._thread.start()

    def __enter__(self) -> TlsListener:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def _load(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile=self.cert_path, keyfile=self.key_path)
        return context

    def _reload_if_signalled(self) -> None:
        if not self.reload_flag.exists():
            return
        if self._stop.wait(self.reload_delay):
            return
        try:
            self._context = self._load()
            fingerprint = _fingerprint_of_pem(self.cert_path.read_text())
        except (ssl.SSLError, OSError, ValueError):
            self.failed_reloads += 1
        else:
            self.loaded.append(fingerprint)
        # Removed only now: the test's reload command waits for this, like systemctl reload.
        self.reload_flag.unlink(missing_ok=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._reload_if_signalled()
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._answer(connection)

    def _answer(self, connection: socket.socket) -> None:
        connection.settimeout(2)
        try:
            with self._context.wrap_socket(connection, server_side=True) as tls:
                tls.recv(1)  # until the client hangs up (or the timeout)
        except (ssl.SSLError, OSError):
            pass
        finally:
            connection.close()


def _fingerprint_of_pem(pem: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def served_fingerprint(port: int, server_name: str = "localhost") -> str:
    """SHA-256 (lowercase hex) of the leaf certificate served on 127.0.0.1:port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we compare fingerprints, not trust
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()
