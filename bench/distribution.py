"""Distribution benchmark: python bench/distribution.py [--servers N,..] [--concurrency C] [--json].

For each N, a fleet whose "web" profile has N server targets (one local server each, no S3
target) receives a renewed certificate; the approver approves at once and the install runs on
every server. The time is the whole send-and-approve round trip. History events per server
target are the events of the Distribute Certificate state divided by N: what one more server costs
against Step Functions' 25,000-event history quota.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from certrelay.cli.report import distributions
from certrelay.local.engine import LocalEngine
from certrelay.local.fleet.seed import Fleet, FleetServer, load_fleet
from certrelay.local.human import send_and_decide

ROOT = Path(__file__).resolve().parents[1]
CLOCK_SPEED = 50.0
SUCCESS = "Renewal Distributed"
HISTORY_QUOTA = 25_000
NOTE = (
    f"The engine's clock runs {CLOCK_SPEED:g}x. Send Install Command waits for SSM's "
    "status-change event (a task token), so a server costs the same history events however "
    "long its install takes. The local Lambda runtime runs one handler at a time; the SSM "
    "installs (bash + openssl) run in parallel threads."
)


def build_fleet(servers: int, concurrency: int) -> Fleet:
    """The demo fleet, its "web" profile distributing only to `servers` local servers."""
    fleet = load_fleet()
    assert fleet.profiles is not None
    profile = dict(fleet.profiles["web"])
    template = next(t for t in profile["targets"] if t["kind"] == "server")
    targets: list[dict[str, Any]] = []
    fleet.servers = {}
    for i in range(1, servers + 1):
        instance = f"i-{0x0A1B2C3D4E5F70000 + i:017x}"
        targets.append({**template, "instances": [instance], "verify_port": 8443})
        fleet.servers[instance] = FleetServer(name=f"web-{i}")
    profile["targets"] = targets
    profile["max_concurrency"] = concurrency
    fleet.profiles = {**fleet.profiles, "web": profile}
    return fleet


def measure(servers: int, concurrency: int, event: dict[str, Any]) -> dict[str, Any]:
    with LocalEngine(fleet=build_fleet(servers, concurrency), clock_speed=CLOCK_SPEED) as engine:
        engine.renew("web-private")
        stamped = engine.certificate_event(event, "web-private")
        start = time.perf_counter()
        result = send_and_decide(engine, stamped, "approve", wait_seconds=600)
        seconds = time.perf_counter() - start
    if len(result.executions) != 1:
        raise RuntimeError(f"expected one execution, got {len(result.executions)}")
    execution = result.executions[0]
    history = execution.history
    in_map = map_events(history, "Distribute Certificate")
    return {
        "servers": servers,
        "seconds": seconds,
        "transitions": sum(1 for e in history if e["type"].endswith("StateEntered")),
        "history_events": len(history),
        "events_per_server": in_map / servers,
        "servers_within_quota": int((HISTORY_QUOTA - (len(history) - in_map)) / (in_map / servers))
        if in_map
        else 0,
        "status": execution.status,
        "final_state": execution.states[-1] if execution.states else "",
        "distributed": sum(1 for d in distributions(execution) if d["status"] == "DISTRIBUTED"),
        "seconds_per_server": seconds / servers,
        "per_batch": seconds / math.ceil(servers / concurrency),
    }


def map_events(history: list[dict[str, Any]], state: str) -> int:
    """How many history events the Map state `state` took, its own entry and exit included."""
    names = [
        (e.get("stateEnteredEventDetails") or e.get("stateExitedEventDetails") or {}).get("name")
        for e in history
    ]
    positions = [i for i, name in enumerate(names) if name == state]
    return positions[-1] - positions[0] + 1 if positions else 0


def growth(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [r["per_batch"] for r in runs]
    spread = max(ratios) / min(ratios) if ratios and min(ratios) > 0 else math.inf
    return {"spread": spread, "near_linear": spread <= 2.0}


def table(runs: list[dict[str, Any]], concurrency: int) -> str:
    head = (
        f"{'servers':>7} {'wall s':>8} {'trans':>6} {'events':>7} {'status':<10} "
        f"{'final state':<23} {'distrib':>8} {'s/server':>9} {'s/batch':>8} {'ev/server':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in runs:
        lines.append(
            f"{r['servers']:>7} {r['seconds']:>8.2f} {r['transitions']:>6} "
            f"{r['history_events']:>7} {r['status']:<10} {r['final_state']:<23} "
            f"{r['distributed']:>4}/{r['servers']:<3} {r['seconds_per_server']:>9.3f} "
            f"{r['per_batch']:>8.2f} {r['events_per_server']:>9.1f}"
        )
    g = growth(runs)
    verdict = "near-linear" if g["near_linear"] else "NOT near-linear"
    lines.append(
        f"\ns/batch = wall s / ceil(servers / {concurrency}); max/min = {g['spread']:.2f} "
        f"-> {verdict} in servers / concurrency (within 2x)"
    )
    worst = max(runs, key=lambda r: r["events_per_server"])
    lines.append(
        f"history events per server target: {worst['events_per_server']:.1f} (at most); "
        f"a profile would need {worst['servers_within_quota']} targets to reach the "
        f"{HISTORY_QUOTA:,}-event quota (profiles hold at most 100)"
    )
    lines.append(NOTE)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="1,10,50", help="comma-separated fleet sizes")
    parser.add_argument("--concurrency", type=int, default=10, help="max_concurrency (1..40)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.servers.split(",") if n.strip()]
    if not sizes or min(sizes) < 1:
        parser.error("--servers needs positive integers")
    event = json.loads((ROOT / "events" / "available.json").read_text(encoding="utf-8"))
    runs: list[dict[str, Any]] = []
    for n in sizes:
        if not args.json:
            print(f"distributing to {n} server(s)...", file=sys.stderr, flush=True)
        runs.append(measure(n, args.concurrency, event))
    failed = [r["servers"] for r in runs if r["final_state"] != SUCCESS]
    if args.json:
        report = {"concurrency": args.concurrency, "clock_speed": CLOCK_SPEED, "note": NOTE}
        print(json.dumps({**report, "runs": runs, "growth": growth(runs)}, indent=2))
    else:
        print(table(runs, args.concurrency))
        if failed:
            print(f"FAILED: not {SUCCESS!r} for N = {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
