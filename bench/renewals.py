"""Renewal cadence: python bench/renewals.py [--seeds N] [--json].

The issue's fleet (one owner, 25 private certificates, 47-day lifetime, 365 days) through
`certrelay.simulation` with `unless-changed` + digest and with `human` + immediate, side by side;
then how the figures move with the seed and with the change rates, so the defaults' weight on
the result is visible. Nothing here is tuned: the rates are certrelay.simulation.Rates' defaults.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from typing import Any

from certrelay.simulation import Rates, Scenario, simulate

FLEET = Scenario(certificates=25, owners=1, lifetime_days=47, days=365)
POLICIES = (("unless-changed", "digest"), ("human", "immediate"))
TARGET_HUMAN_APPROVALS = 12
TARGET_OTHER_EMAILS_PER_DAY = 1
ROW = ("emails", "digests", "human_approvals", "policy_approvals", "exports", "max_emails_per_day")
SUMMARY = (
    "renewals",
    "distributed",
    "failed_runs",
    "action_needed_emails",
    "max_other_emails_per_day",
    "days_over_one_other_email",
)


def side_by_side() -> list[dict[str, Any]]:
    rows = []
    for policy, notify in POLICIES:
        result = simulate(replace(FLEET, policy=policy, notify=notify)).as_json()  # type: ignore[arg-type]
        rows.append({**result["owners"][0], **result["summary"]})
    return rows


def over_seeds(seeds: int) -> dict[str, Any]:
    """Human approvals and noisy days of unless-changed over seeds 1..N: the spread of chance."""
    runs = [simulate(replace(FLEET, seed=seed)).as_json() for seed in range(1, seeds + 1)]
    human = [run["owners"][0]["human_approvals"] for run in runs]
    noisy = [run["summary"]["days_over_one_other_email"] for run in runs]
    return {
        "seeds": seeds,
        "human_approvals": {"mean": statistics.mean(human), "min": min(human), "max": max(human)},
        "met_12": sum(h <= TARGET_HUMAN_APPROVALS for h in human),
        "days_over_one_other_email": {"mean": statistics.mean(noisy), "max": max(noisy)},
    }


def by_rate(seeds: int) -> list[dict[str, Any]]:
    """Mean human approvals of unless-changed with every default rate scaled by a factor."""
    base, rows = Rates(), []
    for factor in (0.0, 0.5, 1.0, 2.0):
        rates = Rates(
            base.names_changed_per_year * factor,
            base.targets_changed_per_year * factor,
            base.run_failure * factor,
        )
        human = [
            simulate(replace(FLEET, seed=seed, rates=rates)).as_json()["owners"][0]
            for seed in range(1, seeds + 1)
        ]
        rows.append(
            {
                "factor": factor,
                "mean_human_approvals": statistics.mean(r["human_approvals"] for r in human),
            }
        )
    return rows


def by_lifetime() -> list[dict[str, Any]]:
    """Renewals, human approvals and emails of both policies at the lifetimes the issue names."""
    rows = []
    for lifetime in (395, 198, 100, 47):
        row: dict[str, Any] = {"lifetime_days": lifetime}
        for policy, notify in POLICIES:
            scenario = replace(FLEET, lifetime_days=lifetime, policy=policy, notify=notify)  # type: ignore[arg-type]
            result = simulate(scenario).as_json()
            owner = result["owners"][0]
            row["renewals"] = result["summary"]["renewals"]
            row[policy] = {"human_approvals": owner["human_approvals"], "emails": owner["emails"]}
        rows.append(row)
    return rows


def speed() -> dict[str, Any]:
    big = Scenario(certificates=1000, owners=40, lifetime_days=47, days=365)
    start = time.perf_counter()
    result = simulate(big).summary()
    return {
        "certificates": 1000,
        "days": 365,
        "renewals": result["renewals"],
        "seconds": round(time.perf_counter() - start, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds for the spread (default 20)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = {
        "side_by_side": side_by_side(),
        "over_seeds": over_seeds(args.seeds),
        "by_rate": by_rate(args.seeds),
        "by_lifetime": by_lifetime(),
        "speed": speed(),
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print_report(data)
    return 0


def print_report(data: dict[str, Any]) -> None:
    left, right = data["side_by_side"]
    print("25 certificates, 1 owner, 47-day lifetime, 365 days, seed 13, default rates")
    print(f"{'':28}{'unless-changed+digest':>22}{'human+immediate':>18}")
    for key in (*ROW, *SUMMARY):
        print(f"{key:28}{left[key]!s:>22}{right[key]!s:>18}")
    print(f"{'human asked because':28}{left['human_approval_reasons']}")
    seeds = data["over_seeds"]
    h = seeds["human_approvals"]
    print(
        f"\nunless-changed over seeds 1..{seeds['seeds']}: human approvals mean {h['mean']:.1f}"
        f" (min {h['min']}, max {h['max']}); <= {TARGET_HUMAN_APPROVALS} in "
        f"{seeds['met_12']} of {seeds['seeds']}; days with >1 non-action email: mean "
        f"{seeds['days_over_one_other_email']['mean']:.1f}, max "
        f"{seeds['days_over_one_other_email']['max']}"
    )
    print(
        "default rates scaled by:  "
        + "  ".join(
            f"x{row['factor']:g} -> {row['mean_human_approvals']:.1f}" for row in data["by_rate"]
        )
        + "  (mean human approvals)"
    )
    print("lifetime  renewals  human approvals (unless-changed / human)  emails (same)")
    for row in data["by_lifetime"]:
        u, h = row["unless-changed"], row["human"]
        print(
            f"{row['lifetime_days']:>8}  {row['renewals']:>8}  "
            f"{u['human_approvals']:>15} / {h['human_approvals']:<22}  "
            f"{u['emails']} / {h['emails']}"
        )
    s = data["speed"]
    print(
        f"speed: {s['certificates']} certificates x {s['days']} days ({s['renewals']} "
        f"renewals) in {s['seconds']} s"
    )


if __name__ == "__main__":
    raise SystemExit(main())
