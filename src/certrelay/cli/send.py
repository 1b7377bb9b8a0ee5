"""`certrelay local send`: one event to the environment `certrelay local up` keeps running.

`up` writes `local-up.json` (port and pid) to the state directory; `send` finds the console
there, POSTs the event and names the executions it started. It needs neither moto nor boto3.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from certrelay.cli.kept_runs import state_directory
from certrelay.errors import CertrelayError

STATE_FILE = "local-up.json"
NOT_RUNNING = "no local environment is running: start one with `certrelay local up`"
SEND_TIMEOUT = 30.0

Say = Callable[[str], None]


class LocalUpError(CertrelayError):
    """`up` cannot start, or `send` cannot deliver; the message says why in one line."""


@dataclass(frozen=True)
class Running:
    """What `local-up.json` says about the environment that is up."""

    pid: int
    port: int
    url: str
    approvals: str


def running() -> Running | None:
    """The environment the state file names, if its process is still alive."""
    try:
        record = json.loads((state_directory() / STATE_FILE).read_text(encoding="utf-8"))
        found = Running(
            pid=int(record["pid"]),
            port=int(record["port"]),
            url=str(record["url"]),
            approvals=str(record.get("approvals", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return found if _alive(found.pid) else None


def send(event: dict[str, Any], *, cert: str | None, port: int | None, say: Say) -> int:
    """POST the event to the running console; print the executions it started."""
    if port is None:
        found = running()
        if found is None:
            raise LocalUpError(NOT_RUNNING)
        port = found.port
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/events",
        data=json.dumps({"event": event, "cert": cert}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=SEND_TIMEOUT) as response:  # noqa: S310
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise LocalUpError(_message(error.read()) or f"the console answered {error.code}") from None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        raise LocalUpError(NOT_RUNNING) from None
    executions = answer.get("executions") or []
    if not executions:
        say(
            "No rule matched this event, so no execution started (an Approaching Expiration "
            "event on a day that is not a threshold is filtered by the rule)."
        )
        return 0
    say(f"Started {len(executions)} execution{'s' if len(executions) > 1 else ''}:")
    for execution in executions:
        say(f"  {execution['name']}  {execution['url']}")
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _message(body: bytes) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        return ""
    return str(answer.get("message", "")) if isinstance(answer, dict) else ""
