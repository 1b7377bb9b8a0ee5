"""`certrelay`: the local engine from the command line (DESIGN.md §9).

  certrelay demo [--org] [--json]
  certrelay local run EVENT.json [--fleet FLEET.yaml] [--cert NAME] [--json]
  certrelay local up [--fleet FLEET.yaml] [--port N] [--clock-speed X]
  certrelay local send EVENT.json [--cert NAME] [--port N]
  certrelay history [EXECUTION] [--json] [--list]
  certrelay history --aws --execution-arn ARN [--region REGION] [--json]
  certrelay simulate --certificates N --owners M --lifetime-days D --days T [--policy P] [--json]

Local runs are kept (redacted) for `certrelay history`, which shows an execution the way the
Step Functions console does; with `--aws` it reads a deployed one (read-only calls only).
`simulate` runs a synthetic fleet's renewals through the policy code, without AWS or moto.

Bad input (unreadable file, invalid JSON, an event the stack would reject, an unknown
certificate name, an unknown execution, AWS refusing to answer) prints one line on stderr and
exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from certrelay.cli import collector
from certrelay.errors import CertrelayError
from certrelay.events import parse_event
from certrelay.local.errors import BadInput, EngineTimeout, EventRefused
from certrelay.local.intake import check_event, read_event
from certrelay.local.results import DECISIONS

# The one place imports wait for the command that needs them: `certrelay demo`, `local run` and
# `local up` load moto and the SAM translator (seconds); `history` and `local send` do not, and
# a bad event is refused having loaded only what reads it (issue 14: at most 1.5x `import boto3`).

EXIT_BAD_INPUT = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser(argv)
    args = parser.parse_args(argv)
    args.whole_process = argv is None  # the command line's own command: it is the process
    try:
        result: int = args.run(args)
    except (BadInput, CertrelayError, EventRefused) as error:
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


def _parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
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
    demo.add_argument(
        "--org",
        action="store_true",
        help="a hub and two member accounts in two Regions (docs/organisation.md)",
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

    up = local_commands.add_parser(
        "up", help="keep a local environment up, with a console in the browser, until Ctrl-C"
    )
    up.add_argument("--fleet", type=Path, metavar="FLEET.yaml", help="default: the demo fleet")
    up.add_argument(
        "--port", type=int, default=8790, help="the console's port on 127.0.0.1 (0: any free one)"
    )
    up.add_argument(
        "--clock-speed",
        type=float,
        default=144.0,
        metavar="X",
        help="waits pass X times faster than on AWS (default 144: a 24-hour approval window "
        "lasts 10 minutes)",
    )
    up.set_defaults(run=_run_up)
    send = local_commands.add_parser("send", help="send one event to `certrelay local up`")
    send.add_argument("event", type=Path, metavar="EVENT.json")
    send.add_argument(
        "--cert", metavar="NAME", help="re-stamp the event for this fleet certificate"
    )
    send.add_argument("--port", type=int, help="the console's port (default: from its state file)")
    send.set_defaults(run=_run_send)

    history = commands.add_parser(
        "history", help="show an execution as the Step Functions console does"
    )
    history.add_argument(
        "execution", nargs="?", metavar="EXECUTION", help="name or unique prefix (default: latest)"
    )
    history.add_argument("--list", action="store_true", help="list saved executions, newest first")
    history.add_argument("--aws", action="store_true", help="read a deployed execution instead")
    history.add_argument("--execution-arn", metavar="ARN", help="the execution to read (--aws)")
    history.add_argument("--region", help="default: the region in the ARN")
    history.add_argument("--json", action="store_true", help="print one JSON object instead")
    history.set_defaults(run=_run_history)

    if _command(argv) == "simulate":  # lazy: the simulation loads the policy (0.3-0.7 s)
        from certrelay.cli import simulate

        simulate.add_parser(commands, _run_simulate, help_text=SIMULATE_HELP)
    else:  # listed, with the same help; its options are read when it is the command
        commands.add_parser("simulate", help=SIMULATE_HELP, add_help=False)
    return parser


SIMULATE_HELP = "run days of a synthetic fleet through the approval and mail policy"


def _command(argv: Sequence[str] | None) -> str | None:
    """The subcommand `argv` names (its first argument that is not an option), if any."""
    words = [word for word in (sys.argv[1:] if argv is None else argv) if word != "--"]
    return next((word for word in words if not word.startswith("-")), None)


def _run_demo(args: argparse.Namespace) -> int:
    with collector.engine_run(whole_process=args.whole_process) as imported:
        if args.org:
            from certrelay.cli.demo_org import run_org_demo  # lazy: the engine loads moto

            imported()
            return run_org_demo(as_json=args.json, decision=args.decision)
        from certrelay.cli.demo import run_demo  # lazy: the engine loads moto

        imported()
        return run_demo(as_json=args.json, decision=args.decision)


def _run_local(args: argparse.Namespace) -> int:
    event = read_event(args.event)
    if not args.cert:  # a malformed event is refused before moto is even imported
        parse_event(event)
    with collector.engine_run(whole_process=args.whole_process) as imported:
        return _run_in_engine(args, event, imported)


def _run_in_engine(
    args: argparse.Namespace, event: dict[str, Any], imported: Callable[[], None]
) -> int:
    from certrelay.cli import kept_runs, render  # lazy: what keeps and renders a run
    from certrelay.cli.report import report  # lazy: as render
    from certrelay.local import human  # lazy: the scripted approver, with the engine
    from certrelay.local.engine import LocalEngine  # lazy: the engine loads moto
    from certrelay.local.fleet.seed import load_fleet  # lazy: the fleet loads moto

    imported()
    fleet = load_fleet(args.fleet)
    if not args.cert:  # refused before anything is deployed; --cert re-stamps it first
        check_event(event, account=fleet.account, region=fleet.region, parse=parse_event)
    speed = 86400 / 2 if args.decision == "timeout" else 50.0
    with LocalEngine(fleet=fleet, clock_speed=speed) as engine:
        if args.cert:  # the re-stamped event is checked before the certificate is changed
            check_event(
                engine.certificate_event(event, args.cert),
                account=fleet.account,
                region=fleet.region,
                parse=parse_event,
            )
            event = engine.reported_event(event, args.cert)
        check_event(event, account=fleet.account, region=fleet.region, parse=parse_event)
        result = human.send_and_decide(
            engine, event, args.decision, reason="Approved with certrelay local run."
        )
        if unkept := kept_runs.keep(result.executions):
            print(f"certrelay: {unkept}", file=sys.stderr)
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
        print(render.operations(engine.findings(), engine.events_out(), engine.metrics()))
    return 0


def _run_history(args: argparse.Namespace) -> int:
    # lazy: only `history` reads kept runs and renders the console's history
    from certrelay.cli import kept_runs
    from certrelay.console import history

    if args.aws:
        name, arn, status, events = _aws_history(args)
    elif args.execution_arn or args.region:
        raise BadInput("--execution-arn and --region read a deployed execution: add --aws")
    elif args.list:
        return _list_saved(as_json=args.json)
    else:
        try:
            saved = kept_runs.load(args.execution) if args.execution else kept_runs.latest()
        except kept_runs.NotSaved as error:
            raise BadInput(str(error)) from None
        name, arn, status, events = saved.name, saved.arn, saved.status, saved.history
    steps = history.steps(events)
    if args.json:
        print(json.dumps(history.as_json(name, arn, status, steps), indent=2))
    else:
        print(history.render(name, status, steps, color=history.use_color(sys.stdout)))
    return 0


def _list_saved(*, as_json: bool) -> int:
    from certrelay.cli import kept_runs  # lazy: as _run_history

    saved = kept_runs.list_saved()
    if as_json:
        rows = [
            {
                "name": s.name,
                "status": s.status,
                "started": s.started.isoformat() if s.started else None,
                "arn": s.arn,
            }
            for s in saved
        ]
        print(json.dumps({"executions": rows}, indent=2))
        return 0
    if not saved:
        print(f"No saved executions in {kept_runs.default_directory()}: run `certrelay local run`.")
    for s in saved:
        started = s.started.astimezone().strftime("%Y-%m-%d %H:%M:%S") if s.started else "?"
        print(f"{started:19}  {s.status:9}  {s.name}")
    return 0


_EXECUTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:states:(?P<region>[a-z0-9-]+):\d{12}:(?:execution|express):[^:\s]+:[^:\s]+$"
)


def _aws_history(args: argparse.Namespace) -> tuple[str, str, str, list[dict[str, Any]]]:
    """DescribeExecution and GetExecutionHistory: read-only calls, with the caller's credentials."""
    if args.execution or args.list:
        raise BadInput("--aws reads the one execution named by --execution-arn")
    if not args.execution_arn:
        raise BadInput("--aws needs --execution-arn ARN (the execution to read)")
    match = _EXECUTION_ARN.fullmatch(args.execution_arn)
    if not match:
        raise BadInput(
            f"{args.execution_arn!r} is not a Step Functions execution ARN "
            "(arn:aws:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME)"
        )
    # lazy: boto3 takes 0.3 s to import, and only --aws reads AWS
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        sfn = boto3.client("stepfunctions", region_name=args.region or match["region"])
        described = sfn.describe_execution(executionArn=args.execution_arn)
        events: list[Any] = []
        pages = sfn.get_paginator("get_execution_history").paginate(
            executionArn=args.execution_arn, includeExecutionData=True
        )
        for page in pages:
            events.extend(page["events"])
    except NoCredentialsError:
        raise BadInput("no AWS credentials found: set AWS_PROFILE or run `aws configure`") from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "Error")
        message = " ".join(str(error.response.get("Error", {}).get("Message", "")).split())
        raise BadInput(f"AWS refused to read {args.execution_arn}: {code}: {message}") from None
    except BotoCoreError as error:
        raise BadInput(f"cannot reach AWS Step Functions: {error}") from None
    return described["name"], args.execution_arn, described["status"], events


def _run_simulate(args: argparse.Namespace) -> int:
    from certrelay.cli import simulate  # lazy: as in _parser

    print(simulate.output(args))
    return 0


def _run_up(args: argparse.Namespace) -> int:
    # lazy: the engine and the fleet load moto
    from certrelay.cli.up import up
    from certrelay.local.fleet.seed import load_fleet

    if not 0 <= args.port <= 65535:
        raise BadInput(f"--port must be between 0 and 65535, not {args.port}")
    if not args.clock_speed > 0:
        raise BadInput(f"--clock-speed must be above 0, not {args.clock_speed}")
    fleet = load_fleet(args.fleet)
    return up(fleet=fleet, port=args.port, clock_speed=args.clock_speed, say=_say)


def _run_send(args: argparse.Namespace) -> int:
    from certrelay.cli import send  # lazy: urllib's client, for this command only

    event = read_event(args.event)
    return send.send(event, cert=args.cert, port=args.port, say=_say)


def _say(text: str) -> None:
    print(text, flush=True)


if __name__ == "__main__":
    sys.exit(main())
