"""Request Approval: store the task token, mail each approver a confirmation link, return no secret.

Invoked by `lambda:invoke.waitForTaskToken`; the workflow resumes when the approval API calls
SendTaskSuccess or SendTaskFailure, so what this returns is only a receipt.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from certrelay.announcements import announce, common_fields
from certrelay.approval_links import RequestSettings, load_key
from certrelay.approval_requests import request_approval

logger = Logger()


@cache
def _dependencies() -> tuple[RequestSettings, bytes, Any, Any, Any, Any]:
    """Read once per container: settings, the HMAC key, the DynamoDB, SNS, events, KMS clients."""
    settings = RequestSettings.from_env(os.environ)
    key = load_key(boto3.client("secretsmanager"), settings.key_secret_arn)
    dynamodb, sns, events, kms = (boto3.client(n) for n in ("dynamodb", "sns", "events", "kms"))
    return settings, key, dynamodb, sns, events, kms


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings, key, dynamodb, sns, events, kms = _dependencies()
    receipt = request_approval(
        event,
        dynamodb=dynamodb,
        sns=sns,
        kms=kms,
        key=key,
        settings=settings,
        now=datetime.now(UTC),
    )
    logger.info(
        "approval requested",
        extra={
            "execution": str(event.get("execution", "")),
            "round": receipt["round"],
            "recipients": len(receipt["recipients"]),
            "expires_at": receipt["expires_at"],
        },
    )
    if receipt["mailed"]:  # a redelivered invocation announced its round the first time
        _announce(events, event, receipt)
    return receipt


def _announce(events: Any, event: dict[str, Any], receipt: dict[str, Any]) -> None:
    """certrelay.approval-requested; the mails are out, so a bus error is logged, not raised."""
    detail = {
        **common_fields(event.get("decision") or {}, str(event.get("execution", ""))),
        "outcome": "approval-requested",
        "round": receipt["round"],
        "approvers": list(receipt["recipients"]),
        "expires_at": receipt["expires_at"],
    }
    try:
        announce(events, detail)
    except Exception as error:  # the event is a courtesy; the approval itself stands
        logger.warning("approval-requested event not put", extra={"error": str(error)})
