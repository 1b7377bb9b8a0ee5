"""The `--json` object of DESIGN.md §9: executions, notifications, findings, distributions."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from certrelay.distribution import target_label
from certrelay.local.results import Execution

if TYPE_CHECKING:
    from certrelay.local.engine import LocalEngine


def report(engine: LocalEngine, executions: list[Execution]) -> dict[str, Any]:
    """What the local run did, as one JSON-able object."""
    return {
        "executions": [execution.summary() for execution in executions],
        "notifications": engine.notifications(),
        "findings": engine.findings(),
        "events_out": engine.events_out(),
        "metrics": engine.metrics(),
        "distributions": [d for e in executions for d in distributions(e)],
    }


def distributions(execution: Execution) -> list[dict[str, Any]]:
    """Each target's result, read from the execution's "Distribute Certificate" state."""
    for event in execution.history:
        details = event.get("stateExitedEventDetails") or {}
        if event["type"] == "MapStateExited" and details.get("name") == "Distribute Certificate":
            results = json.loads(details["output"])["distribution"]["results"]
            return [
                {"target": target_label(r.get("target") or {}), "status": r.get("status")}
                for r in results
            ]
    return []
