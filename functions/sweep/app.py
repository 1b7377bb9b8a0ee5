"""Reconciliation Sweep: the daily pass that re-sends expiry reminders ACM's events missed."""

from __future__ import annotations

from certrelay import coldstart

with coldstart.init():  # no cyclic collections while the long-lived modules are made
    import os
    from datetime import UTC, datetime
    from typing import Any

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from certrelay.clients import client
    from certrelay.reminders import expiry_thresholds
    from certrelay.sweep import sweep

    logger = Logger()


@coldstart.once
def _dependencies() -> tuple[frozenset[int], Any, Any]:
    """Read once per container: the threshold days and the ACM and EventBridge clients."""
    return expiry_thresholds(os.environ), client("acm"), client("events")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    thresholds, acm, events = _dependencies()
    report = sweep(acm, events, now=datetime.now(UTC), thresholds=thresholds)
    logger.info("swept", extra=report.as_dict())
    # Failing makes Lambda's asynchronous retries sweep again (a reminder put twice ends in
    # Already Handled), then park the run in the dead-letter queue; both are alarmed.
    if report.failed:
        raise RuntimeError(
            f"{len(report.failed)} of {report.due} reminders were refused by EventBridge: "
            + "; ".join(report.failed[:5])
        )
    return report.as_dict()
