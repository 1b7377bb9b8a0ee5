"""The `--json` object of DESIGN.md §9: executions, notifications, findings, distributions."""

from __future__ import annotations

from typing import Any

from certrelay.local.engine import Execution, LocalEngine


def report(engine: LocalEngine, executions: list[Execution]) -> dict[str, Any]:
    """What the local run did, as one JSON-able object.

    Findings (Security Hub) and distributions (S3, servers) are empty lists until the workflow
    has the states that make them; the keys are part of the contract already.
    """
    return {
        "executions": [execution.summary() for execution in executions],
        "notifications": engine.notifications(),
        "findings": [],
        "distributions": [],
    }
