"""Findings function: a certificate's Security Hub findings, raised and resolved by state."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache, partial
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from certrelay.accounts import Sessions, sessions_from_env
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


@cache  # clients in the function's Region, kept per container; a hub's sessions for members
def _hub(region: str) -> tuple[Callable[[str], Any], Sessions | None]:
    return cache(partial(boto3.client, region_name=region)), sessions_from_env(os.environ)


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = route(ROUTES, event)
    logger.append_keys(state=event["state"])
    account, region, partition = findings.scope(context.invoked_function_arn, os.environ)
    (clients, hub), now = _hub(region), datetime.now(UTC)
    return task(event, findings.Reporting(clients, account, region, partition, logger, now, hub))
