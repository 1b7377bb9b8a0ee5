"""`certrelay`: the local engine from the command line (DESIGN.md §9).

  certrelay demo [--json]
  certrelay local run EVENT.json [--fleet FLEET.yaml] [--cert NAME] [--json]

Bad input (unreadable file, invalid JSON, an event the stack would reject, an unknown
certificate name) prints one line on stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from certrelay.errors import CertrelayError
from certrelay.local.engine import EngineTimeout
from certrelay.local.human import DECISIONS

EXIT_BAD_INPUT = 2


class BadInput(Exception):
    """Something the user gave us is wrong; the message says what, in one line."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.run(args)
    except (BadInput, CertrelayError) as error:
        message = error.args[0] if error.args else str(error)
        print(f"certrelay: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except EngineTimeout as error:
        print(f"certrelay: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `certrelay ... | head`: the reader left; nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("certrelay: interrupted", file=sys.stderr)
        return 130
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="certrelay",
        description="certrelay's local engine: the SAM stack on an embedded AWS, in one process.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the newcomer's story end to end")
    demo.add_argument("--json", action="store_true", help="print one JSON object instead")
    demo.add_argument(
        "--decision",
        choices=DECISIONS,
        help="what the approver does (default: you, in a browser; approve without a terminal)",
    )
    demo.set_defaults(run=_run_demo)

    local = commands.add_parser("local", help="run events through a fresh local environment")
    local_commands = local.add_subparsers(dest="local_command", required=True, metavar="COMMAND")
    run = local_commands.add_parser("run", help="send one event and show what happened")
    run.add_argument("event", type=Path, metavar="EVENT.json")
    run.add_argument("--fleet", type=Path, metavar="FLEET.yaml", help="default: the demo fleet")
    run.add_argument("--cert", metavar="NAME", help="re-stamp the event for this fleet certificate")
    run.add_argument(
        "--decision",
        choices=DECISIONS,
        default="approve",
        help="what the approver does if the event needs approval (default: approve)",
    )
    run.add_argument("--json", action="store_true", help="print one JSON object instead")
    run.set_defaults(run=_run_local)
    return parser


def _run_demo(args: argparse.Namespace) -> int:
    from certrelay.local.demo import run_demo

    return run_demo(as_json=args.json, decision=args.decision)


def _run_local(args: argparse.Namespace) -> int:
    from certrelay.events import parse_event
    from certrelay.local import render
    from certrelay.local.engine import LocalEngine
    from certrelay.local.fleet import load_fleet
    from certrelay.local.human import send_and_decide
    from certrelay.local.report import report

    event = read_event(args.event)
    fleet = load_fleet(args.fleet)
    speed = 86400 / 2 if args.decision == "timeout" else 50.0
    with LocalEngine(fleet=fleet, clock_speed=speed) as engine:
        if args.cert:
            event = engine.certificate_event(event, args.cert)
        check_event(event, account=fleet.account, parse=parse_event)
        result = send_and_decide(
            engine, event, args.decision, reason="Approved with certrelay local run."
        )
        if args.json:
            print(json.dumps(report(engine, result.executions), indent=2, default=str))
            return 0
        if not result.matched_rules:
            print(
                "No rule matched this event, so no execution started "
                "(an Approaching Expiration event on a day that is not a threshold is filtered "
                "by the rule)."
            )
            return 0
        for execution in result.executions:
            print(f"Execution {execution.name}")
            print(f"  {render.path(execution)}\n")
            print(render.history_table(execution))
            print()
        for message in engine.notifications():
            print(render.email(message))
            print()
    return 0


def read_event(path: Path) -> dict[str, Any]:
    """Load an event file, or raise BadInput naming the file and the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise BadInput(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path} is not UTF-8 text") from None
    try:
        event = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInput(
            f"{path} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    if not isinstance(event, dict):
        raise BadInput(f"{path} must hold one JSON object (an EventBridge event)")
    return event


def check_event(event: dict[str, Any], *, account: str, parse: Any) -> None:
    """Refuse, in one line, an event this stack would never accept."""
    parse(event)  # MalformedEvent / UnsupportedEvent name the problem
    if event.get("account") != account:
        raise BadInput(
            f"the event is from account {event.get('account')}, and this stack only takes events "
            f"from its own account {account} (use --cert NAME to re-stamp it for a fleet "
            "certificate)"
        )


if __name__ == "__main__":
    sys.exit(main())
