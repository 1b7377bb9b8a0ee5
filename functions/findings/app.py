"""Raise Finding / Resolve Findings: a certificate's Security Hub findings, opened and closed."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from certrelay.announcements import announce, common_fields
from certrelay.errors import ConfigurationError
from certrelay.findings import ALL_PROBLEMS, raise_finding, resolve_findings

logger = Logger()


@cache
def _securityhub(region: str) -> Any:
    return boto3.client("securityhub", region_name=region)


@cache
def _events(region: str) -> Any:
    return boto3.client("events", region_name=region)


def _scope(function_arn: str) -> tuple[str, str, str]:
    """Account, region and partition of the invoked function (region from AWS_REGION else)."""
    parts = function_arn.split(":")
    account = parts[4] if len(parts) >= 7 and parts[2] == "lambda" else ""
    region = (parts[3] if account else "") or os.environ.get("AWS_REGION", "")
    if not account.isdigit() or not region:
        raise ConfigurationError(f"cannot tell account and region from {function_arn!r}")
    return account, region, parts[1] or "aws"


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    action, decision = event.get("action"), event.get("decision") or {}
    if action not in {"raise", "resolve"}:
        raise ValueError(f"unknown action {action!r}; expected 'raise' or 'resolve'")
    account, region, partition = _scope(context.invoked_function_arn)
    problem = str(event.get("problem") or (decision.get("finding") or {}).get("problem") or "")
    arn = str((decision.get("certificate") or {}).get("arn") or "")
    log = {"certificate_arn": arn, "problem": problem, "execution": event.get("execution")}
    if action == "resolve":
        ids = resolve_findings(
            _securityhub(region),
            certificate_arn=arn,
            now=datetime.now(UTC),
            problems=[problem] if event.get("problem") else ALL_PROBLEMS,
        )
        logger.info("findings resolved", extra={**log, "archived": len(ids)})
        if ids:
            _announce(region, decision, event, {"outcome": "finding-resolved", "finding_ids": ids})
        return {"action": action, "ids": ids}
    raised = raise_finding(
        _securityhub(region),
        decision=decision,
        problem=problem,
        now=datetime.now(UTC),
        account=account,
        region=region,
        partition=partition,
        detail=str(event.get("detail") or ""),
    )
    logger.info("finding raised", extra={**log, "severity": raised["severity"]})
    _announce(
        region,
        decision,
        event,
        {
            "outcome": "finding-raised",
            "problem": problem,
            "severity": raised["severity"],
            "finding_ids": [raised["id"]],
        },
    )
    return {"action": action, "ids": [raised["id"]], "severity": raised["severity"]}


def _announce(
    region: str, decision: dict[str, Any], event: dict[str, Any], fields: dict[str, Any]
) -> None:
    """certrelay.finding-raised / -resolved; Security Hub has it, so a bus error is only logged."""
    detail = {**common_fields(decision, str(event.get("execution", ""))), **fields}
    try:
        announce(_events(region), detail)
    except Exception as error:  # the finding itself stands; the event is a courtesy
        logger.warning("finding event not put", extra={"error": str(error)})
