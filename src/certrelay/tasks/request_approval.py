"""Request Approval and Escalate Approval: keep the task token, mail each approver (or, in the
escalation round, each escalation contact) a confirmation link, return no secret.

Both are `lambda:invoke.waitForTaskToken` tasks; the workflow resumes when the approval API
calls SendTaskSuccess or SendTaskFailure, so what they return is only a receipt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from certrelay.announcements import announce, build_models, common_fields
from certrelay.approval_links import RequestSettings, load_key
from certrelay.approval_policy import POLICY_HUMAN
from certrelay.approval_requests import request_approval
from certrelay.clients import client


@dataclass(frozen=True)
class Clients:
    """Read once per container: settings, the HMAC key, the DynamoDB, SNS, events, KMS clients."""

    settings: RequestSettings
    key: bytes
    dynamodb: Any
    sns: Any
    events: Any
    kms: Any

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Clients:
        settings = RequestSettings.from_env(environ)
        key = load_key(client("secretsmanager"), settings.key_secret_arn)
        dynamodb, sns, events, kms = (client(n) for n in ("dynamodb", "sns", "events", "kms"))
        build_models("approval-requested")  # the event every request round announces
        return cls(settings, key, dynamodb, sns, events, kms)


@dataclass(frozen=True)
class Asking:
    """What the request-approval function acts with in one invocation."""

    clients: Clients
    log: Logger
    now: datetime


def request_round(event: dict[str, Any], run: Asking) -> dict[str, Any]:
    """Request Approval: the first round, to the profile's approvers."""
    return _ask("request", event, run)


def escalation_round(event: dict[str, Any], run: Asking) -> dict[str, Any]:
    """Escalate Approval: the second round, after the first timed out, to approvers and
    escalation contacts."""
    return _ask("escalation", event, run)


def _ask(round_: str, event: dict[str, Any], run: Asking) -> dict[str, Any]:
    clients = run.clients
    receipt = request_approval(
        {**event, "round": round_},
        dynamodb=clients.dynamodb,
        sns=clients.sns,
        kms=clients.kms,
        key=clients.key,
        settings=clients.settings,
        now=run.now,
    )
    run.log.info(
        "approval requested",
        extra={
            "execution": str(event.get("execution", "")),
            "round": receipt["round"],
            "recipients": len(receipt["recipients"]),
            "expires_at": receipt["expires_at"],
        },
    )
    if receipt["mailed"]:  # a redelivered invocation announced its round the first time
        _announce(run, event, receipt)
    return receipt


def _announce(run: Asking, event: dict[str, Any], receipt: Mapping[str, Any]) -> None:
    """certrelay.approval-requested; the mails are out, so a bus error is logged, not raised."""
    decision = event.get("decision") or {}
    detail = {
        **common_fields(decision, str(event.get("execution", ""))),
        "outcome": "approval-requested",
        "round": receipt["round"],
        "approvers": list(receipt["recipients"]),
        "expires_at": receipt["expires_at"],
        "approval_reason": (decision.get("approval") or {}).get("reason") or POLICY_HUMAN,
    }
    try:
        announce(run.clients.events, detail)
    except Exception as error:  # the event is a courtesy; the approval itself stands
        run.log.warning("approval-requested event not put", extra={"error": str(error)})
