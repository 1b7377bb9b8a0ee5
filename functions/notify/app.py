"""Notify Rejection / Notify Expiry: tell the people concerned how an approval ended."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from certrelay.distribution import summarize
from certrelay.mail_markers import publish_once
from certrelay.metrics import count
from certrelay.outcomes import DISTRIBUTED, EXPIRED, REJECTED, compose_outcome, rejection

logger = Logger()


@cache
def _sns() -> Any:
    return boto3.client("sns")


@cache
def _dynamodb() -> Any:
    return boto3.client("dynamodb")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    kind, execution = str(event.get("kind")), str(event.get("execution"))
    messages = compose_outcome(kind, event.get("decision") or {}, execution_arn=execution)
    mailed = [  # one marker per recipient: a retried task mails only whom it has not reached
        publish_once(
            _dynamodb(),
            _sns(),
            table=os.environ["EVENT_TABLE_NAME"],
            topic=os.environ["NOTIFICATION_TOPIC_ARN"],
            execution=execution,
            kind=kind,
            message=message,
            now=datetime.now(UTC),
        )
        for message in messages
    ]
    logger.info("outcome notified", extra={"kind": kind, "sent": sum(mailed)})
    results = ((event.get("decision") or {}).get("distribution") or {}).get("results") or []
    summary = summarize(list(results))
    if event.get("kind") == DISTRIBUTED:
        count("Distributions", {"result": summary["outcome"]})
        count("TargetsFailed", {"result": summary["outcome"]}, value=summary["failed"])
    elif event.get("kind") == EXPIRED:
        count("Approvals", {"outcome": "expired"})
    answer: dict[str, Any] = {"sent": len(messages), "summary": summary}
    if event.get("kind") == REJECTED:  # read from the approval's cause, for the event out
        answer["decision"] = rejection(event.get("decision") or {})
    return answer
