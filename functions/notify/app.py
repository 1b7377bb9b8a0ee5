"""Notify Rejection / Notify Expiry: tell the people concerned how an approval ended."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from certrelay.distribution import summarize
from certrelay.metrics import count
from certrelay.outcomes import DISTRIBUTED, EXPIRED, REJECTED, compose_outcome, rejection

logger = Logger()


@cache
def _sns() -> Any:
    return boto3.client("sns")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    messages = compose_outcome(
        str(event.get("kind")),
        event.get("decision") or {},
        execution_arn=str(event.get("execution")),
    )
    topic = os.environ["NOTIFICATION_TOPIC_ARN"]
    for message in messages:
        _sns().publish(
            TopicArn=topic,
            Subject=message["subject"],
            Message=message["message"],
            MessageAttributes=message["attributes"],
        )
    logger.info("outcome notified", extra={"kind": event.get("kind"), "sent": len(messages)})
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
