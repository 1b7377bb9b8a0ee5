"""The local engine's fleet servers (certrelay.local.fleet.servers): how the install document's
script is run against a sandbox host."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any
from unittest import mock

from certrelay.local.fleet import servers
from certrelay.local.fleet.servers import LocalServer


def test_given_a_sandbox_host_when_the_script_runs_then_openssl_reads_its_own_empty_store(
    tmp_path: Path,
) -> None:
    server = LocalServer("i-0123456789abcdef0", "web", tmp_path / "host")
    seen: dict[str, str] = {}
    popen = subprocess.Popen

    def recording(command: Any, *args: Any, env: dict[str, str], **kwargs: Any) -> Any:
        seen.update(env)
        return popen(command, *args, env=env, **kwargs)

    parameters = {
        "CertPath": "/etc/ssl/web/cert.pem",
        "KeyPath": "/etc/ssl/web/key.pem",
        "ChainPath": "/etc/ssl/web/chain.pem",
        "Reload": "nginx",
    }
    with mock.patch.object(servers.subprocess, "Popen", recording):
        status, stdout, _ = servers.run_install(server, parameters, {})

    assert status == 2
    assert stdout.startswith("REFUSED: ")
    store, folder = Path(seen["SSL_CERT_FILE"]), Path(seen["SSL_CERT_DIR"])
    assert store.is_relative_to(server.sandbox)
    assert folder.is_relative_to(server.sandbox)
    assert store.read_bytes() == b""
    assert [p for p in folder.iterdir() if p != store] == []
