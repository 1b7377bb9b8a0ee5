"""Daily Digest: mails each owner one message listing the routine outcomes held for them."""

from __future__ import annotations

from certrelay import coldstart

with coldstart.init():  # no cyclic collections while the long-lived modules are made
    import os
    from datetime import UTC, datetime
    from typing import Any

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from certrelay.clients import client
    from certrelay.digest import send_digests

    logger = Logger()


@coldstart.once
def _dependencies() -> tuple[Any, Any]:
    """Created once per container, at init: the DynamoDB and SNS clients."""
    return client("dynamodb"), client("sns")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    dynamodb, sns = _dependencies()
    # An error (one owner's publish failed) makes Lambda retry: the owners already mailed
    # today are not mailed again; then the invocation is parked in the dead-letter queue.
    report = send_digests(
        dynamodb,
        sns,
        table=os.environ["DIGEST_TABLE_NAME"],
        topic=os.environ["NOTIFICATION_TOPIC_ARN"],
        now=datetime.now(UTC),
    )
    logger.info("digests sent", extra=report)
    return report
