"""Install Callback: SSM says an install command finished; answer the task that waits for it.

Invoked by the stack's rule on SSM's "EC2 Command Status-change Notification" for the stack's
install document (and by the distribute function when the command finished before its task
token was stored). The token is read from DynamoDB and never logged.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from certrelay.install_callbacks import command_of, complete

logger = Logger()


@cache
def _dependencies() -> tuple[Any, Any, Any]:
    """Created once per container, at init: the DynamoDB, SSM and Step Functions clients."""
    return boto3.client("dynamodb"), boto3.client("ssm"), boto3.client("stepfunctions")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ddb, ssm, sfn = _dependencies()
    command_id = command_of(event)
    answer = complete(ddb, ssm, sfn, os.environ["INSTALL_TOKEN_TABLE"], command_id)
    logger.info("install callback", extra=answer)
    return answer
