"""Findings function: a certificate's Security Hub findings, raised and resolved by state."""

from __future__ import annotations

from certrelay import coldstart

with coldstart.init():  # no cyclic collections while the long-lived modules are made
    import os
    from datetime import UTC, datetime
    from typing import Any

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from certrelay.accounts import kept_client, kept_sessions
    from certrelay.routing import route
    from certrelay.tasks import findings

    logger = Logger()
    ROUTES = {  # the state's name (the payload's `state`, from $$.State.Name) → its code
        "Raise Finding": findings.raise_finding,
        "Raise Distribution Finding": findings.raise_finding,
        "Raise Export Finding": findings.raise_finding,
        "Resolve Finding": findings.resolve_findings,
        "Close Findings": findings.resolve_findings,
    }


@coldstart.once
def _dependencies() -> list[Any]:
    return findings.setup(os.environ)


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task, now, arn = route(ROUTES, event), datetime.now(UTC), context.invoked_function_arn
    logger.append_keys(state=event["state"])
    hub = kept_sessions(os.environ)  # a hub's sessions reach its members; None in single mode
    return task(event, findings.Reporting.invoked(arn, os.environ, kept_client, logger, now, hub))
