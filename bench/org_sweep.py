"""Organisation sweep benchmark: python bench/org_sweep.py [--accounts 50] [--regions 3]
[--certificates 100] [--refused 0] [--json].

Runs the local engine's organisation (certrelay.local.org): the hub 111111111111 and the members
222222222222, 333333333333, 200000000001…, each running member.yaml in every Region (us-east-1,
eu-west-1, ap-southeast-2, …); accounts follow credentials, so AssumeRole really switches
accounts. It imports N certificates into every (account, Region) pair's own ACM (one EC P-256
key; the i-th expires i days and 12 hours ahead), then starts the org sweep state machine the
way its schedule does and times it end to end: List Sweep Pairs, the Distributed Map's one child
per pair (AssumeRole into the member, ListCertificates page by page, PutEvents on the pair's own
bus, which member.yaml forwards to the hub's bus), Summarise Sweep.
`--refused K` lists K more accounts that never ran member.yaml: STS refuses their read role.

Reported: wall seconds; each Sweep Pair's handler time (mean, p50, p95, max); state transitions
from the parent's history (`*StateEntered`) plus the map run's children (moto keeps no child
history: each child entered Sweep Pair, and Report Pair Failure when it failed, which its result
shows), and what AWS would bill for them (one transition per child started, plus theirs).
The lifecycle executions the reminders start on the hub are held until the sweep ends, as in
bench/sweep.py: on AWS they run elsewhere.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from sweep import HeldStarts, import_into  # bench/sweep.py: the one-account sweep bench

from certrelay.local.engine import LocalEngine
from certrelay.local.moto_fixes import roles_must_exist
from certrelay.local.org import MEMBER_ACCOUNTS, LocalOrganization

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "eu-central-1", "ap-northeast-1")
SCHEDULE = "OrgSweepStateMachineDaily"
EXTERNAL_ID = "bench-org-sweep-external-id"


def member_accounts(count: int) -> list[str]:
    """The demo organisation's two members (the demo fleet has certificates there), then more."""
    more = [f"2{index:011d}" for index in range(1, count - len(MEMBER_ACCOUNTS) + 1)]
    return [*MEMBER_ACCOUNTS, *more][:count]


def import_certificates(pairs: list[tuple[str, str]], count: int, now: dt.datetime) -> float:
    """Import `count` self-signed certificates into each pair's ACM; seconds taken."""
    from moto.acm.models import acm_backends

    def named(account: str, region: str) -> Callable[[int], str]:
        return lambda index: f"h{index}.{account}.{region}.example"

    return import_into([(acm_backends[a][r], named(a, r)) for a, r in pairs], count, now)


def timed_sweep_pair(engine: LocalEngine) -> list[float]:
    """Wrap the org sweep function's Sweep Pair route; the list collects each call's seconds."""
    seconds: list[float] = []
    (function,) = [f for f in engine.runtime.functions.values() if f.code_dir.name == "org_sweep"]
    routes: dict[str, Callable[..., Any]] = function.module.ROUTES  # type: ignore[union-attr]
    inner = routes["Sweep Pair"]

    def sweep_pair(event: dict[str, Any], run: Any) -> Any:
        started = time.perf_counter()
        try:
            return inner(event, run)
        finally:
            seconds.append(time.perf_counter() - started)

    routes["Sweep Pair"] = sweep_pair
    return seconds


def transitions(history: list[dict[str, Any]], results: list[Any]) -> dict[str, int]:
    """State transitions: the parent's, the children's, and what AWS bills (one per child
    started on top of the children's own)."""
    parent = sum(e["type"].endswith("StateEntered") for e in history)
    children = sum(2 if isinstance(r, dict) and "error" in r else 1 for r in results)
    return {
        "parent": parent,
        "children": children,
        "children_started": len(results),
        "billed": parent + len(results) + children,
    }


def map_results(history: list[dict[str, Any]]) -> list[Any]:
    """The map's results, as Summarise Sweep received them (its TaskScheduled parameters)."""
    for event in history:
        details = event.get("taskScheduledEventDetails")
        if details and '"Summarise Sweep"' in details["parameters"]:
            sweep = json.loads(details["parameters"])["Payload"]["sweep"]
            return list(sweep.get("results") or [])
    return []


def measure(accounts: int, regions: int, certificates: int, refused: int) -> dict[str, Any]:
    import boto3

    members = member_accounts(accounts - 1 - refused)
    without_stack = [f"4{index:011d}" for index in range(1, refused + 1)]
    organization = LocalOrganization(members=tuple(members), regions=REGIONS[:regions])
    listed = {"MemberAccountIds": ",".join([*members, *without_stack])}
    started = time.perf_counter()
    with LocalEngine(organization=organization, parameters=listed) as engine:
        set_up = time.perf_counter() - started
        hub = engine.fleet.account
        pairs = [(a, r) for a in (hub, *members, *without_stack) for r in organization.regions]
        seeding = import_certificates(pairs, certificates, engine.now)
        with roles_must_exist():
            per_pair = timed_sweep_pair(engine)
            schedule = engine.stack.schedules[SCHEDULE] if engine.stack else None
            assert schedule is not None
            sfn = boto3.client("stepfunctions", region_name=engine.fleet.region)
            lifecycle, held = engine._sfn, HeldStarts(engine._sfn)
            engine._sfn = held
            started = time.perf_counter()
            arn = sfn.start_execution(
                stateMachineArn=schedule.target_arn, name="org-sweep-bench", input=schedule.input
            )["executionArn"]
            run = engine.wait(arn, name="org-sweep-bench", seconds=3600)
            wall = time.perf_counter() - started
            engine._sfn = lifecycle
            (map_run,) = sfn.list_map_runs(executionArn=arn)["mapRuns"]
            described = sfn.describe_map_run(mapRunArn=map_run["mapRunArn"])
        results = map_results(run.history)
        summary = run.output or {}
        ordered = sorted(per_pair)
        return {
            "accounts": accounts,
            "regions": regions,
            "certificates_per_pair": certificates,
            "pairs": len(pairs),
            "certificates": len(pairs) * certificates,
            "refused_accounts": refused,
            "member_stacks": len(engine.members.stacks),
            "setup_seconds": round(set_up, 1),  # hub and member stacks deployed
            "import_seconds": round(seeding, 1),
            "status": run.status,
            "final_state": run.states[-1] if run.states else None,
            "wall_seconds": round(wall, 2),
            "pair_seconds": {
                "mean": round(statistics.fmean(ordered), 3) if ordered else None,
                "p50": round(ordered[len(ordered) // 2], 3) if ordered else None,
                "p95": round(ordered[int(len(ordered) * 0.95)], 3) if ordered else None,
                "max": round(ordered[-1], 3) if ordered else None,
                "sum": round(sum(ordered), 2),
            },
            "max_concurrency": described["maxConcurrency"],
            "map_run_children": described["executionCounts"],
            "transitions": transitions(run.history, results),
            "history_events": len(run.history),
            "swept": summary.get("swept"),
            "failed": summary.get("failed"),
            "listed": summary.get("listed"),
            "due": summary.get("due"),
            "sent": summary.get("sent"),
            "lifecycle_starts_held": len(held.held),  # reminders the hub's rule took
        }


def table(result: dict[str, Any]) -> str:
    r, p, t = result, result["pair_seconds"], result["transitions"]
    organisation = f"{r['accounts']} accounts x {r['regions']} Regions = {r['pairs']} pairs"
    seeded = f"{r['certificates_per_pair']} a pair; imported in {r['import_seconds']} s"
    stacks = f"{r['setup_seconds']} s to deploy the hub and {r['member_stacks']} member stacks"
    outcome = f"{r['status']} ({r['final_state']}): {r['swept']} pairs swept, {r['failed']} failed"
    pair = f"mean {p['mean']} s, p50 {p['p50']} s, p95 {p['p95']} s, max {p['max']} s"
    counted = f"parent {t['parent']}, children {t['children']}, child starts"
    rows = [
        ("organisation", organisation),
        ("set-up", stacks),
        ("certificates", f"{r['certificates']:,} ({seeded})"),
        ("result", outcome),
        ("listed / due / sent", f"{r['listed']:,} / {r['due']} / {r['sent']}"),
        ("wall time", f"{r['wall_seconds']:.2f} s (MaxConcurrency {r['max_concurrency']})"),
        ("per pair (Sweep Pair)", f"{pair}; sum {p['sum']} s"),
        ("transitions", f"{counted} {t['children_started']}: {t['billed']} billed"),
        ("history events", str(r["history_events"])),
        ("reminders at the hub", f"{r['lifecycle_starts_held']} lifecycle starts (held)"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50, help="the hub's own included")
    parser.add_argument("--regions", type=int, default=3, choices=range(1, len(REGIONS) + 1))
    parser.add_argument("--certificates", type=int, default=100, help="per (account, Region)")
    parser.add_argument("--refused", type=int, default=0, help="accounts with no member stack")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.accounts < 1 or args.certificates < 0 or not 0 <= args.refused < args.accounts:
        print(
            "org_sweep: --accounts >= 1, --certificates >= 0, 0 <= --refused < --accounts",
            file=sys.stderr,
        )
        return 2
    result = measure(args.accounts, args.regions, args.certificates, args.refused)
    print(json.dumps(result, indent=2) if args.json else table(result))
    expected_failures = args.refused * args.regions
    ok = result["status"] == "SUCCEEDED" and result["failed"] == expected_failures
    return 0 if ok and result["sent"] == result["due"] else 1


if __name__ == "__main__":
    sys.exit(main())
