"""Distribute Certificate, one target: copy to a bucket, or send / check the server install."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from certrelay.distribution import (
    InstallSettings,
    cancel_install,
    check_install,
    copy_to_bucket,
    send_install,
    target_label,
)
from certrelay.windows import next_opening

logger = Logger()


@cache
def _clients() -> tuple[Any, Any, InstallSettings]:
    return boto3.client("s3"), boto3.client("ssm"), InstallSettings(os.environ["INSTALL_DOCUMENT"])


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    s3, ssm, settings = _clients()
    action = event.get("action")
    if action == "copy":
        result = copy_to_bucket(s3, event["bundle"], event["target"])
        result["target"] = event["target"]
    elif action == "send":
        result = send_install(
            ssm, event["bundle"], event["target"], name=str(event["name"]), settings=settings
        )
    elif action == "cancel":
        result = cancel_install(ssm, str(event["command_id"]))
    elif action == "window":
        opens = next_opening(event["window"], datetime.now(UTC))
        result = {"opens_at": opens.strftime("%Y-%m-%dT%H:%M:%SZ") if opens else None}
    elif action == "check":
        instance_ids = list(event.get("instances") or [])
        result = check_install(ssm, str(event["command_id"]), instance_ids)
        result["instance_ids"] = instance_ids
        result["attempt"] = int(event.get("attempt", 0)) + 1
    else:
        raise ValueError(f"unknown action {action!r}: expected copy, send, check, cancel or window")
    logger.info(
        "distribution step",
        extra={
            "action": action,
            "target": target_label(event.get("target") or {}),
            "status": result.get("status"),
        },
    )
    return result
