"""`certrelay local up`: a local environment that stays up until Ctrl-C.

`up` starts the engine and the console, writes `local-up.json` (port and pid) to the state
directory so `certrelay local send` (send.py) can find it, prints each email as the stack sends
it, keeps each finished execution for `certrelay history`, and on Ctrl-C or SIGTERM stops what
still runs, removes the state file and returns 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3

from certrelay.cli import render
from certrelay.cli.kept_runs import keep, state_directory
from certrelay.cli.send import STATE_FILE, LocalUpError, Say, running
from certrelay.console.server import Console
from certrelay.local.engine import LocalEngine

if TYPE_CHECKING:
    from certrelay.local.fleet.seed import Fleet

TICK = 0.25  # seconds between looks at the outbox and the executions
FINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def up(*, fleet: Fleet, port: int, clock_speed: float, say: Say) -> int:
    """Run the environment until SIGINT or SIGTERM; 0 once everything has stopped."""
    other = running()
    if other is not None:
        raise LocalUpError(
            f"a local environment is already running at {other.url} (pid {other.pid}): "
            "stop it first"
        )
    _check_port(port)
    stop: list[int] = []  # the signals received; a list, because a handler must take no lock
    started = time.monotonic()
    with _stopped_by_signals(stop), LocalEngine(fleet=fleet, clock_speed=clock_speed) as engine:
        try:
            console = Console(engine, port=port)
        except OSError as error:
            raise _port_error(port, error) from None
        with console, _state_file(console, engine) as path:
            _banner(engine, console, path, time.monotonic() - started, say)
            watcher = _Watcher(engine, console, say)
            while not stop:
                time.sleep(TICK)
                watcher.look()
            watcher.look()  # what happened since the last look is shown and kept too
            say("certrelay local up: stopping")
            console.stop()  # first: an event posted now would outlive the embedded AWS
            _stop_running(engine, console)
    say("certrelay local up: stopped")
    return 0


@contextlib.contextmanager
def _stopped_by_signals(stop: list[int]) -> Iterator[None]:
    """Ctrl-C and SIGTERM ask the loop to stop instead of raising in the middle of it.

    The handler only appends to a list: it runs in the main thread between two bytecodes, and
    setting a threading.Event there can deadlock on the lock the interrupted `Event.wait` holds.
    Once a signal has asked it to stop, the ones that follow (a burst of Ctrl-C) are ignored
    until the process ends: restoring Python's handler then would turn a late Ctrl-C into a
    KeyboardInterrupt in the middle of a clean exit. Without a signal, the handlers are restored.
    """
    previous = {
        number: signal.signal(number, lambda number, _frame: stop.append(number))
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_IGN if stop else handler)


@contextlib.contextmanager
def _state_file(console: Console, engine: LocalEngine) -> Iterator[Path]:
    directory = state_directory()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / STATE_FILE
        record = {
            "pid": os.getpid(),
            "port": console.port,
            "url": console.url,
            "approvals": engine.approval_url(),
        }
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(record) + "\n", encoding="utf-8")
        temporary.replace(path)
    except OSError as error:
        raise LocalUpError(f"cannot write the state file in {directory}: {error}") from None
    try:
        yield path
    finally:
        try:
            if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass


def _banner(engine: LocalEngine, console: Console, path: Path, seconds: float, say: Say) -> None:
    names = ", ".join(sorted(engine.certificates))
    say(
        f"certrelay local up: template.yaml deployed on an embedded AWS in {seconds:.1f} s "
        f"(fleet: {names})"
    )
    say(f"  console         {console.url}")
    say(f"  approval pages  {engine.approval_url()}")
    say(f"  state file      {path}")
    say("Send events from another terminal, for example:")
    say("  certrelay local send events/available.json --cert web-private")
    say("Emails appear here as the stack sends them. Ctrl-C stops everything.\n")


class _Watcher:
    """Prints each new email; keeps each finished execution for `certrelay history`."""

    def __init__(self, engine: LocalEngine, console: Console, say: Say) -> None:
        self.engine, self.console, self.say = engine, console, say
        self.shown = 0
        self.kept: set[str] = set()

    def look(self) -> None:
        try:
            self._look()
        except Exception as error:  # one bad look must not end the environment
            self.say(f"certrelay: could not read the outbox or the executions: {error!r}")

    def _look(self) -> None:
        messages = self.engine.notifications()
        for message in messages[self.shown :]:
            self.say(render.email(message))
        self.shown = len(messages)
        for row in self.console.executions():
            if row.status in FINAL and row.arn not in self.kept:
                self.kept.add(row.arn)
                execution = self.engine.wait(row.arn, name=row.name, seconds=5)
                keep([execution])
                self.say(
                    f"Execution {row.name} {row.status}: {self.console.url}/executions/{row.name}"
                )


def _stop_running(engine: LocalEngine, console: Console) -> None:
    """Stop what still runs, so no execution outlives the embedded AWS it runs on."""
    sfn = boto3.client("stepfunctions", region_name=engine.fleet.region)
    for row in console.executions():
        if row.status != "RUNNING":
            continue
        # moto cannot stop an execution that is just finishing; it ends by itself then
        with contextlib.suppress(Exception):
            sfn.stop_execution(
                executionArn=row.arn, error="LocalStopped", cause="certrelay local up stopped"
            )


def _check_port(port: int) -> None:
    """Refuse a busy port before the engine takes seconds to start."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise _port_error(port, error) from None


def _port_error(port: int, error: OSError) -> LocalUpError:
    return LocalUpError(
        f"cannot serve the console on 127.0.0.1:{port}: {error.strerror or error} "
        "(choose another with --port N, or --port 0 for any free port)"
    )
