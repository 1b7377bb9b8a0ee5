"""Distribute function: Find Window and the Distribute Certificate Map's item states."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from certrelay.routing import route
from certrelay.tasks import distribute

logger = Logger()
ROUTES = {  # the state's name (the payload's `state`, from $$.State.Name) → its code
    "Find Window": distribute.find_window,
    "Copy To Bucket": distribute.copy_to_bucket,
    "Send Install Command": distribute.send_install_command,
    "Cancel Install": distribute.cancel_install,
}


@cache
def _client(service: str) -> Any:
    return boto3.client(service)  # type: ignore[call-overload]


@cache
def _setup() -> distribute.Setup:
    return distribute.setup(os.environ)


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = route(ROUTES, event)
    logger.append_keys(state=event["state"])
    return task(event, distribute.Distributing(*_setup(), _client, logger, datetime.now(UTC)))
