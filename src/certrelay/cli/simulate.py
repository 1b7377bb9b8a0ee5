"""`certrelay simulate`: a synthetic fleet's renewals through the policy, tallied per owner.

The arguments are read here, not by argparse's types, so that every bad value is one line on
stderr (argparse would print its usage too). The simulation itself is certrelay.simulation.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any, cast, get_args

from certrelay.approval_policy import Mode
from certrelay.delivery import NotifyMode
from certrelay.local.errors import BadInput
from certrelay.simulation import (
    DEFAULT_SEED,
    MAX_CERTIFICATES,
    MAX_DAYS,
    Rates,
    Result,
    Scenario,
    simulate,
)

POLICIES = ("human", "unless-changed", "auto")
NOTIFY_MODES: tuple[str, ...] = get_args(NotifyMode)
# The profiles' notify unless --notify says otherwise: the two policies the issue compares.
DEFAULT_NOTIFY = {"human": "immediate", "unless-changed": "digest", "auto": "digest"}
COLUMNS = (
    ("owner", "owner"),
    ("certificates", "certs"),
    ("emails", "emails"),
    ("digests", "digests"),
    ("human_approvals", "human"),
    ("policy_approvals", "by policy"),
    ("exports", "exports"),
    ("max_emails_per_day", "max/day"),
)


def add_parser(commands: Any, run: Callable[[argparse.Namespace], int], *, help_text: str) -> None:
    """`certrelay simulate …` on the CLI's subcommands."""
    simulate_cmd = commands.add_parser(
        "simulate",
        help=help_text,
        description="Run T days of a synthetic fleet of private certificates (renewed by ACM) "
        "through certrelay's own decisions and count each owner's emails, digests, approvals "
        "and exports. No AWS, no waiting. See docs/renewal-cadence.md.",
    )
    add = simulate_cmd.add_argument
    add("--certificates", required=True, metavar="N", help=f"1 to {MAX_CERTIFICATES:,}")
    add("--owners", required=True, metavar="M", help="1 to N; certificates go round-robin")
    add("--lifetime-days", required=True, metavar="D", help=f"2 to {MAX_DAYS}")
    add("--days", required=True, metavar="T", help=f"days to simulate, 1 to {MAX_DAYS}")
    add("--policy", default="unless-changed", metavar="|".join(POLICIES), help="approval mode")
    add("--notify", metavar="immediate|digest", help="default: digest, immediate for human")
    add("--seed", default=str(DEFAULT_SEED), metavar="S", help=f"default {DEFAULT_SEED}")
    rates = Rates()
    add(
        "--names-per-year",
        default=str(rates.names_changed_per_year),
        metavar="R",
        help="names added per certificate per year (default %(default)s)",
    )
    add(
        "--targets-per-year",
        default=str(rates.targets_changed_per_year),
        metavar="R",
        help="targets added per certificate's profile per year (default %(default)s)",
    )
    add(
        "--failure-rate",
        default=str(rates.run_failure),
        metavar="P",
        help="share of distribution runs that fail, 0 to <1 (default %(default)s)",
    )
    add("--json", action="store_true", help="print one JSON object instead")
    simulate_cmd.set_defaults(run=run)


def scenario_from(args: argparse.Namespace) -> Scenario:
    """The scenario the arguments describe; BadInput (one line) for the first bad one."""
    if args.policy not in POLICIES:
        raise BadInput(f"--policy must be one of {', '.join(POLICIES)}, not {args.policy!r}")
    notify = args.notify or DEFAULT_NOTIFY[args.policy]
    if notify not in NOTIFY_MODES:
        raise BadInput(f"--notify must be one of {', '.join(NOTIFY_MODES)}, not {notify!r}")
    scenario = Scenario(
        certificates=_whole(args.certificates, "--certificates"),
        owners=_whole(args.owners, "--owners"),
        lifetime_days=_whole(args.lifetime_days, "--lifetime-days"),
        days=_whole(args.days, "--days"),
        policy=cast(Mode, args.policy),
        notify=cast(NotifyMode, notify),
        seed=_whole(args.seed, "--seed"),
        rates=Rates(
            names_changed_per_year=_number(args.names_per_year, "--names-per-year"),
            targets_changed_per_year=_number(args.targets_per_year, "--targets-per-year"),
            run_failure=_number(args.failure_rate, "--failure-rate"),
        ),
    )
    problems = scenario.problems()
    if problems:
        raise BadInput(problems[0])
    return scenario


def output(args: argparse.Namespace) -> str:
    """What `certrelay simulate` prints: the table and summary, or one JSON object."""
    result = simulate(scenario_from(args))
    return json.dumps(result.as_json(), indent=2) if args.json else render(result)


def render(result: Result) -> str:
    """The per-owner table, then what happened to the renewals and why a human was asked."""
    rows = [tally.row() for tally in result.owners]
    header = [title for _, title in COLUMNS]
    cells = [[str(row[key]) for key, _ in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(COLUMNS))]
    lines = [_line(header, widths), _line(["-" * w for w in widths], widths)]
    lines += [_line(line, widths) for line in cells]
    return "\n".join([*lines, "", *summary_lines(result.summary())])


def summary_lines(summary: dict[str, Any]) -> list[str]:
    rates = summary["rates"]
    reasons = summary["human_approval_reasons"]
    asked = ", ".join(f"{reason} {count}" for reason, count in reasons.items()) or "never"
    return [
        f"policy {summary['policy']}, notify {summary['notify']}, seed {summary['seed']}; "
        f"{summary['days']} days, lifetime {summary['lifetime_days']} days, ACM renews every "
        f"{summary['renewal_every_days']} days",
        f"change rates: names {rates['names_changed_per_year']}/certificate/year, targets "
        f"{rates['targets_changed_per_year']}/profile/year, failed runs {rates['run_failure']}",
        f"renewals {summary['renewals']}: distributed {summary['distributed']}, not distributed "
        f"{summary['not_distributed']}, still retrying at the end {summary['retrying_at_end']} "
        f"(failed runs {summary['failed_runs']}, each sent again the next day)",
        f"a human was asked: {asked}",
        f"action-needed emails {summary['action_needed_emails']}; most other emails on one day "
        f"{summary['max_other_emails_per_day']} (days with more than one: "
        f"{summary['days_over_one_other_email']})",
    ]


def _line(cells: list[str], widths: list[int]) -> str:
    first, *rest = cells
    return "  ".join(
        [first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]
    )


def _whole(text: str, option: str) -> int:
    value = text.strip()
    if not value.lstrip("-").isdigit():
        raise BadInput(f"{option} must be a whole number, not {text!r}")
    if value.startswith("-"):
        raise BadInput(f"{option} must not be negative, not {text}")
    return int(value)


def _number(text: str, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BadInput(f"{option} must be a number, not {text!r}") from None
    if not 0 <= value < float("inf"):
        raise BadInput(f"{option} must be a number of at least 0, not {text}")
    return value
