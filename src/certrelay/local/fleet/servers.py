"""The fleet's servers, locally: a sandbox directory and a small TLS listener each.

A server target's paths (/etc/ssl/...) live under the server's sandbox. Its listener serves
the certificate and key found at those paths, and reloads them only when told, so "the new
certificate is served" is proven by a real TLS handshake, as on the host. The SSM install
document's script runs for real (bash, openssl) against the sandbox, adapters included: the
sandbox puts stand-ins for nginx, apachectl, haproxy, envoy and systemctl first on PATH
(`systemctl reload` touches the listener's reload flag), and a `script:<path>` adapter runs
the sandbox's copy of that path (a stand-in doing the same, unless the fleet put a real one
there) from a directory the sandbox's hook-dirs file lists. Only the fetch step (the AWS CLI
reading S3 and Secrets Manager) is done by the engine through the embedded AWS. What the
step reports is shaped as the SSM agent shapes it (`agent_output`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from unittest import mock

import boto3
from moto.core.responses import ActionResult, EmptyResult
from moto.events.models import events_backends
from moto.ssm.exceptions import InvalidDocument
from moto.ssm.models import SimpleSystemManagerBackend
from moto.ssm.responses import SimpleSystemManagerResponse

from certrelay.local.fleet.seed import ROOT
from certrelay.local.fleet.serving import Serving
from certrelay.text import iso_z

INSTALL_SCRIPT = ROOT / "ssm" / "install-certificate.sh"
INSTALL_STEP = "installCertificate"  # the document's install step (certrelay.ssm_document)
BASH = shutil.which("bash") or "/bin/bash"
INSTALL_TIMEOUT = 120.0  # seconds one server's install script may run
TOOLS = ("nginx", "apachectl", "haproxy", "envoy")  # their config tests pass in the sandbox

# How the SSM agent reports a plugin's output (amazon-ssm-agent,
# agent/framework/processor/executer/iohandler/iohandler.go: MaximumPluginOutputSize,
# TruncateOutput, MarkAsFailed; agent/plugins/runscript/runscript.go: "failed to run commands").
AGENT_OUTPUT_LIMIT = 2500
AGENT_ERROR_TITLE = "\n----------ERROR-------\n"
AGENT_TRUNCATED_OUT = "\n---Output truncated---"
AGENT_TRUNCATED_ERROR = "\n---Error truncated----"


@dataclass
class Listener:
    """A TLS listener on 127.0.0.1 serving one certificate/key pair from disk."""

    cert_path: Path
    key_path: Path
    reload_flag: Path
    server: socketserver.ThreadingTCPServer | None = None
    _serving: Serving | None = None
    _context: ssl.SSLContext | None = None
    _loaded_flag: float = -1.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def start(self) -> None:
        listener = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                context = listener.context()
                with (
                    contextlib.suppress(OSError, ssl.SSLError),
                    context.wrap_socket(self.request, server_side=True) as tls,
                ):
                    tls.settimeout(5)
                    with contextlib.suppress(OSError):
                        tls.recv(1024)
                    tls.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._serving = Serving(self.server)
        self._serving.start()

    def stop(self) -> None:
        if self._serving is not None:
            self._serving.stop()

    def context(self) -> ssl.SSLContext:
        """The TLS context, rebuilt from the files when the reload flag has changed."""
        with self._lock:
            flag = self.reload_flag.stat().st_mtime if self.reload_flag.exists() else 0.0
            if self._context is None or flag != self._loaded_flag:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(self.cert_path, self.key_path)
                self._context, self._loaded_flag = context, flag
            return self._context


@dataclass
class LocalServer:
    """One instance id of the fleet: where its files live and what it listens on."""

    instance: str
    name: str
    sandbox: Path
    reload_fails: bool = False
    listeners: dict[int, Listener] = field(default_factory=dict)  # target verify port -> listener

    def path(self, host_path: str) -> Path:
        return self.sandbox / host_path.lstrip("/")

    @property
    def reload_flag(self) -> Path:
        return self.sandbox / "reload-requested"

    @property
    def tools(self) -> Path:
        return self.sandbox / "tools"

    @property
    def hook_dirs(self) -> Path:
        return self.sandbox / "etc" / "certrelay" / "hook-dirs"

    @property
    def trust_store(self) -> tuple[Path, Path]:
        """The sandbox host's own default trust store (file, directory): empty. OpenSSL reads
        the default store for every `openssl x509` and `s_client`, though the script never
        trusts it (the bundle's chain is its only trust); this machine's store (about 140
        certificates) took 20-25 ms of CPU of each of those runs, an empty one about 4 ms."""
        certs = self.sandbox / "etc" / "ssl" / "certs"
        return certs / "ca-certificates.crt", certs

    def _reload_lines(self) -> list[str]:
        """The host's reload, here: flag the listener to reread its files (or fail once)."""
        once = self.sandbox / "reload-failed-once"
        lines = []
        if self.reload_fails:
            lines.append(f'if [ ! -e "{once}" ]; then touch "{once}"; exit 1; fi')
        lines.append(f'touch "{self.reload_flag}"')
        return lines

    def install_tools(self) -> None:
        """Stand-ins for the programs the named adapters run (a Debian-style host: apache2), and
        the host's empty trust store."""
        self.tools.mkdir(parents=True, exist_ok=True)
        store, _ = self.trust_store
        store.parent.mkdir(parents=True, exist_ok=True)
        store.touch()
        for name in TOOLS:
            _executable(self.tools / name, ["exit 0"])
        systemctl = [
            'case "$1" in',
            "  reload)",
            *(f"    {line}" for line in self._reload_lines()),
            "    ;;",
            '  cat) [ "$2" = apache2.service ] ;;',
            "esac",
        ]
        _executable(self.tools / "systemctl", systemctl)

    def hook(self, adapter: str, *, reloads: bool) -> str:
        """The sandbox's twin of a script:<path> adapter, listed in the hook-dirs file."""
        if not adapter.startswith("script:"):
            return adapter
        path = self.path(adapter.removeprefix("script:"))
        if not path.exists():
            _executable(path, self._reload_lines() if reloads else ["exit 0"])
        path.parent.chmod(0o755)
        self.hook_dirs.parent.mkdir(parents=True, exist_ok=True)
        listed = self.hook_dirs.read_text().splitlines() if self.hook_dirs.exists() else []
        if str(path.parent) not in listed:
            self.hook_dirs.write_text("".join(f"{d}\n" for d in [*listed, str(path.parent)]))
        self.hook_dirs.chmod(0o644)
        return f"script:{path}"

    def serving(self, port: int) -> str | None:
        """SHA-256 fingerprint of the certificate a TLS client sees on the target's port."""
        listener = self.listeners.get(port)
        if listener is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with (
            socket.create_connection(("127.0.0.1", listener.port), timeout=5) as raw,
            context.wrap_socket(raw) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        return hashlib.sha256(der or b"").hexdigest()


def _executable(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(["#!/bin/sh", *lines]) + "\n", encoding="utf-8")
    path.chmod(0o755)


def agent_output(stdout: str, stderr: str, exit_status: int) -> str:
    """A step's Output as the SSM agent reports it: stdout, the ERROR title and stderr (with
    the agent's own last line when the script failed), cut to 2,500 characters."""
    if exit_status != 0:
        failure = f"failed to run commands: exit status {exit_status}"
        stderr = f"{stderr}\n{failure}" if stderr else failure
    title = AGENT_ERROR_TITLE if stderr else ""
    space = AGENT_OUTPUT_LIMIT - len(title)
    if len(stdout) + len(stderr) < space:
        return f"{stdout}{title}{stderr}"
    if len(stdout) > space / 2 and len(stderr) > space / 2:
        half = (space - len(AGENT_TRUNCATED_ERROR) - len(AGENT_TRUNCATED_OUT)) // 2
        return f"{stdout[:half]}{AGENT_TRUNCATED_OUT}{title}{stderr[:half]}{AGENT_TRUNCATED_ERROR}"
    if len(stdout) < space / 2:
        keep = space - len(AGENT_TRUNCATED_ERROR) - len(stdout)
        return f"{stdout}{title}{stderr[:keep]}{AGENT_TRUNCATED_ERROR}"
    keep = space - len(AGENT_TRUNCATED_OUT) - len(stderr)
    return f"{stdout[:keep]}{AGENT_TRUNCATED_OUT}{title}{stderr}"


def run_install(
    server: LocalServer, parameters: dict[str, str], fetched: dict[str, bytes]
) -> tuple[int, str, str]:
    """Run the SSM document's install step for one server; (exit status, stdout, stderr)."""
    work = server.sandbox / "work"
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o700)
    for name, content in fetched.items():
        path = work / name
        path.write_bytes(content)
        os.chmod(path, 0o600)
    verify_port = parameters.get("VerifyPort")
    listener = server.listeners.get(int(verify_port)) if verify_port else None
    local = {
        **parameters,
        "WorkDir": str(work),
        "CertPath": str(server.path(parameters["CertPath"])),
        "KeyPath": str(server.path(parameters["KeyPath"])),
        "ChainPath": str(server.path(parameters["ChainPath"])),
        "Reload": server.hook(parameters["Reload"], reloads=True),
        "ConfigTest": server.hook(parameters.get("ConfigTest", ""), reloads=False),
        "VerifyHost": "127.0.0.1",
    }
    server.install_tools()
    if listener is not None:
        local["VerifyPort"] = str(listener.port)
    else:
        local.pop("VerifyPort", None)
    for host_path in ("CertPath", "KeyPath", "ChainPath"):
        Path(local[host_path]).parent.mkdir(parents=True, exist_ok=True)
    environment = {
        "PATH": f"{server.tools}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(server.sandbox),
        "LANG": "C.UTF-8",
        "CERTRELAY_HOOK_DIRS_FILE": str(server.hook_dirs),
        # OpenSSL's default trust store: the sandbox host's own (empty), not this machine's
        "SSL_CERT_FILE": str(server.trust_store[0]),
        "SSL_CERT_DIR": str(server.trust_store[1]),
        **{f"SSM_{k}": v for k, v in local.items()},
    }
    command = [BASH, str(INSTALL_SCRIPT)]
    with subprocess.Popen(  # noqa: S603 - our own script, parameters validated by the document
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        # The deadline is a timer that kills the script: subprocess.run(timeout=…) would poll
        # the process with sleeps; communicate() without one returns when the script ends.
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            process.kill()

        deadline = threading.Timer(INSTALL_TIMEOUT, expire)
        deadline.start()
        try:
            stdout, stderr = process.communicate()
        finally:
            deadline.cancel()
    if expired.is_set():
        raise subprocess.TimeoutExpired(command, INSTALL_TIMEOUT, stdout, stderr)
    return process.returncode, stdout, stderr


def seed_files(
    server: LocalServer, target: dict[str, Any], cert_pem: bytes, key_pem: bytes, chain_pem: bytes
) -> None:
    """Put the certificate the server serves today at the target's paths."""
    for key, content, mode in (
        ("cert_path", cert_pem, 0o644),
        ("chain_path", chain_pem, 0o644),
        ("key_path", key_pem, 0o600),
    ):
        path = server.path(str(target[key]))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.chmod(path, mode)


class LocalFleetServers:
    """Every server of the fleet, and the hook that makes SSM Run Command reach them."""

    def __init__(
        self,
        root: Path,
        servers: dict[str, tuple[str, bool]],
        client: Callable[[str, str], Any],
    ) -> None:
        """`servers`: instance id -> (name, whether its reload command fails); `client`: a
        service's client in a Region for every install's fetch and status event (the engine's,
        one per service and Region, shared between threads)."""
        self.client = client
        self.servers = {
            instance: LocalServer(instance, name, root / instance, reload_fails)
            for instance, (name, reload_fails) in servers.items()
        }
        self.runs: list[tuple[str, int, str]] = []  # (instance, exit status, output)
        # Organisation mode: instance -> (account, region) of a server in another account; a
        # command reaches it only from there, and says so on that account's bus.
        self.places: dict[str, tuple[str, str]] = {}
        # (account, region, document, instance) of each command sent to a placed server
        self.commands: list[tuple[str, str, str, str]] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start_listener(self, server: LocalServer, target: dict[str, Any]) -> None:
        port = target.get("verify_port")
        if not port or int(port) in server.listeners:
            return
        listener = Listener(
            server.path(str(target["cert_path"])),
            server.path(str(target["key_path"])),
            server.reload_flag,
        )
        listener.start()
        server.listeners[int(port)] = listener

    def stop(self) -> None:
        for thread in self._threads:
            thread.join(timeout=30)
        for server in self.servers.values():
            for listener in server.listeners.values():
                listener.stop()

    @contextlib.contextmanager
    def installed(self, region: str) -> Any:
        """While active, a SendCommand to a fleet server runs the install document for real."""
        original = SimpleSystemManagerBackend.send_command

        def send_command(backend: Any, **kwargs: Any) -> Any:
            self._check_document(backend, kwargs)
            return self._send_command(original(backend, **kwargs), kwargs, region)

        def cancel_command(response: Any) -> Any:
            return self._cancel_command(response, region)

        with (
            mock.patch.object(
                SimpleSystemManagerResponse, "cancel_command", cancel_command, create=True
            ),
            mock.patch.object(SimpleSystemManagerBackend, "send_command", send_command),
            mock.patch.object(
                SimpleSystemManagerResponse,
                "list_command_invocations",
                _list_command_invocations,
                create=True,
            ),
        ):
            yield

    def _check_document(self, backend: Any, kwargs: dict[str, Any]) -> None:
        """A command for a placed server names a document of that server's own account and
        Region (its member stack's), as SSM there requires (InvalidDocument otherwise)."""
        place = (backend.account_id, backend.region_name)
        placed = [i for i in kwargs.get("instance_ids") or [] if self.places.get(i) == place]
        name = kwargs.get("document_name")
        if placed and name not in backend._documents:
            raise InvalidDocument(f"Document {name} does not exist in {place[0]} {place[1]}.")

    def _send_command(self, command: Any, kwargs: dict[str, Any], region: str) -> Any:
        """moto recorded the command; each fleet server runs it in the background."""
        parameters = {k: v[0] for k, v in (kwargs.get("parameters") or {}).items()}
        command.status = "InProgress"
        for invocation in command.invocations:
            server = self.servers.get(invocation["InstanceId"])
            place = self.places.get(invocation["InstanceId"])
            if server is not None and place is not None:
                if place != (command.account_id, command.backend_region):
                    server = None  # SSM in another account or Region does not know it
                else:
                    self.commands.append((*place, command.document_name, server.instance))
            invocation["Status"] = "InProgress" if server else "Undeliverable"
            if server is None:
                invocation["StatusDetails"] = "Undeliverable"
                continue
            self._in_background(self._run, server, invocation, command, parameters, region)
        if command.invocations and all(
            i["Status"] == "Undeliverable" for i in command.invocations
        ):  # no host to run on: SSM ends the command at once, and says so on the bus
            command.status = "Failed"
            self._in_background(self._announce, command, region)
        return command

    def _cancel_command(self, response: Any, region: str) -> Any:
        """CancelCommand, which moto 5.2.5 lacks: what has not finished is Cancelled."""
        command = response.ssm_backend.get_command_by_id(response._get_param("CommandId"))
        with self._lock:
            for invocation in command.invocations:
                if invocation["Status"] in ("Pending", "InProgress", "Delayed"):
                    invocation["Status"] = invocation["StatusDetails"] = "Cancelled"
            ended = command.status not in ("Pending", "InProgress")
            command.status = command.status if ended else "Cancelled"
        if not ended:
            self._in_background(self._announce, command, region)
        return EmptyResult()

    def _in_background(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _run(
        self,
        server: LocalServer,
        invocation: dict[str, Any],
        command: Any,
        parameters: dict[str, str],
        region: str,
    ) -> None:
        try:
            fetched = _fetch(parameters, region, self.client)
            status, stdout, stderr = run_install(server, parameters, fetched)
        except Exception as error:
            status, stdout, stderr = 1, "", f"certrelay: {type(error).__name__}: {error}"
        output = agent_output(stdout, stderr, status)
        self.runs.append((server.instance, status, output))
        outcome = "Success" if status == 0 else "Failed"
        invocation["Status"] = invocation["StatusDetails"] = outcome
        invocation["ResponseCode"] = status
        invocation["StandardOutputContent"] = stdout[:24000]  # GetCommandInvocation's fields
        invocation["StandardErrorContent"] = stderr[:8000]
        invocation["Plugins"] = [  # the document's steps, as ListCommandInvocations shows them
            {"Name": "fetchBundle", "Status": "Success", "ResponseCode": 0, "Output": ""},
            {"Name": INSTALL_STEP, "Status": outcome, "ResponseCode": status, "Output": output},
            {"Name": "removeFetchedFiles", "Status": "Success", "ResponseCode": 0, "Output": ""},
        ]
        with self._lock:  # the last install to finish ends the command, once
            if command.status != "InProgress" or not all(
                i["Status"] in ("Success", "Failed", "Undeliverable") for i in command.invocations
            ):
                return
            failed = any(i["Status"] != "Success" for i in command.invocations)
            command.status = "Failed" if failed else "Success"
        self._announce(command, region)

    def _announce(self, command: Any, region: str) -> None:
        """`announce`, on the bus of the command's own account and Region when that is a
        placed server's (organisation mode); the engine's own otherwise."""
        place = (command.account_id, command.backend_region)
        if place in set(self.places.values()):
            announce_in(command, *place)
        else:
            announce(command, region, self.client("events", region))


def _list_command_invocations(response: Any) -> Any:
    """ListCommandInvocations, which moto 5.2.5 lacks: per instance, per step."""
    command = response.ssm_backend.get_command_by_id(response._get_param("CommandId"))
    wanted = response._get_param("InstanceId")
    details = bool(response._get_param("Details"))
    invocations = []
    for invocation in command.invocations:
        if wanted and invocation["InstanceId"] != wanted:
            continue
        item = {k: invocation[k] for k in ("CommandId", "InstanceId", "DocumentName")}
        item["Status"] = item["StatusDetails"] = invocation["Status"]
        if details:
            item["CommandPlugins"] = invocation.get("Plugins", [])
        invocations.append(item)
    return ActionResult({"CommandInvocations": invocations})


def announce(command: Any, region: str, events: Any = None) -> None:
    """SSM's "EC2 Command Status-change Notification" for a finished command, on the bus.

    The shape is AWS's (source aws.ssm; detail command-id, document-name, status, dates; the
    instances as resources); the stack's rule on the install document takes it from there.
    """
    entry = _status_change(command, command.account_id, region)
    events = events or boto3.client("events", region_name=region)
    events.put_events(Entries=[cast(Any, entry)])


def announce_in(command: Any, account: str, region: str) -> None:
    """`announce` where SSM puts it: the default bus of the command's account and Region."""
    events_backends[account][region].put_events([_status_change(command, account, region)])


def _status_change(command: Any, account: str, region: str) -> dict[str, Any]:
    detail = {
        "command-id": command.command_id,
        "document-name": command.document_name,
        "requested-date-time": _iso(command.requested_date_time),
        "expire-after": _iso(command.expires_after),
        "status": command.status,
    }
    instances = [i["InstanceId"] for i in command.invocations]
    return {
        "Source": "aws.ssm",
        "DetailType": "EC2 Command Status-change Notification",
        "Resources": [f"arn:aws:ec2:{region}:{account}:instance/{i}" for i in instances],
        "Detail": json.dumps(detail),
    }


def _iso(moment: Any) -> str:
    return iso_z(moment) if isinstance(moment, datetime) else str(moment)


def _fetch(
    parameters: dict[str, str], region: str, client: Callable[[str, str], Any]
) -> dict[str, bytes]:
    """The document's fetch step, done through the embedded AWS: bundle files and passphrase."""
    s3 = client("s3", region)
    files = {}
    for name, key, version in (
        ("cert.pem", "CertKey", "CertVersion"),
        ("chain.pem", "ChainKey", "ChainVersion"),
        ("privkey.pem", "KeyKey", "KeyVersion"),
    ):
        bucket, object_key = parameters["Bucket"], parameters[key]
        if parameters.get(version, "null") != "null":
            answer = s3.get_object(Bucket=bucket, Key=object_key, VersionId=parameters[version])
        else:
            answer = s3.get_object(Bucket=bucket, Key=object_key)
        files[name] = answer["Body"].read()
    secret_arn = parameters["SecretArn"]
    if secret_arn.startswith("arn:"):  # the hub's secret, from a member's Region too
        region = secret_arn.split(":")[3]
    secrets = client("secretsmanager", region)
    version = parameters.get("SecretVersion", "null")
    if version != "null":
        secret = secrets.get_secret_value(SecretId=parameters["SecretArn"], VersionId=version)
    else:
        secret = secrets.get_secret_value(SecretId=parameters["SecretArn"])
    files["passphrase"] = secret["SecretString"].encode()
    return files
