"""Triage Event: one ACM event in, the decision the state machine routes on out."""

from __future__ import annotations

from certrelay import coldstart

with coldstart.init():  # no cyclic collections while the long-lived modules are made
    import os
    from datetime import UTC, datetime
    from typing import Any

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from certrelay.tasks.triage import Triager

    logger = Logger()


@coldstart.once
def _dependencies() -> Triager:
    return Triager.from_env(os.environ)


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    decision = _dependencies().triage(event, now=datetime.now(UTC))
    logger.info(
        "triaged",
        extra={
            "certificate_arn": decision["certificate"]["arn"],
            "route": decision["route"],
            "reason": decision["reason"],
            "owners": len(decision["owners"]),
        },
    )
    return decision
