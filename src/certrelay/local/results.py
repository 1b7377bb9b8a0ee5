"""What the local engine hands back: finished executions, what an event did, a schedule's firing.

Plain records, apart from the engine, so what renders or reports them need not load moto.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# What the scripted approver (certrelay.local.human) can do when an execution asks for approval.
DECISIONS = ("approve", "reject", "timeout")


@dataclass
class Execution:
    """One finished execution, as the console would show it."""

    name: str
    arn: str
    status: str
    states: list[str]
    output: Any
    error: str | None
    cause: str | None
    history: list[dict[str, Any]] = field(repr=False)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "states": self.states,
            "output": self.output,
        }


@dataclass
class SendResult:
    """What one event did: which rules matched, which executions it started."""

    event: dict[str, Any]
    matched_rules: list[str]
    executions: list[Execution]


@dataclass
class SweepRun:
    """One firing of a schedule: the function's answer, its error, the executions it started."""

    answer: Any
    error: str | None
    executions: list[Execution]
