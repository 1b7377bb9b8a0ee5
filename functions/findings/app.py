"""Findings function: a certificate's Security Hub findings, raised and resolved by state."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

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


@cache
def _client(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


def _dependencies() -> list[Any]:  # at init: every client it uses, in its region (kept)
    return [_client(service, os.environ["AWS_REGION"]) for service in findings.SERVICES]


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task, now, arn = route(ROUTES, event), datetime.now(UTC), context.invoked_function_arn
    logger.append_keys(state=event["state"])
    return task(event, findings.Reporting.invoked(arn, os.environ, _client, logger, now))
