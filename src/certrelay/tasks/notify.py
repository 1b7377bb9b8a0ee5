"""Report Distribution, Notify Export Failure, Notify Rejection and Notify Expiry: tell the
people concerned how a renewal ended, once per recipient however often the task runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from certrelay.approval_links import digest as sha256
from certrelay.digest import hold
from certrelay.distribution import summarize
from certrelay.mail_markers import publish_once
from certrelay.metrics import count
from certrelay.outcomes import (
    DISTRIBUTED,
    EXPIRED,
    EXPORT_FAILED,
    REJECTED,
    compose_outcome,
    report_delivery,
)
from certrelay.outcomes import rejection as rejection_fields


@dataclass(frozen=True)
class Telling:
    """What the notify function acts with in one invocation."""

    dynamodb: Any
    sns: Any
    table: str  # the event table, holding one marker per (execution, outcome, recipient)
    topic: str
    log: Logger
    now: datetime
    digest_table: str = ""  # where a routine report waits for the owner's daily digest

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], dynamodb: Any, sns: Any, log: Logger, now: datetime
    ) -> Telling:
        table, topic = environ["EVENT_TABLE_NAME"], environ["NOTIFICATION_TOPIC_ARN"]
        return cls(dynamodb, sns, table, topic, log, now, environ.get("DIGEST_TABLE_NAME", ""))


def report_distribution(event: dict[str, Any], run: Telling) -> dict[str, Any]:
    """Report Distribution: what reached which target, to the owners (a routine report of a
    digest profile waits for the daily digest instead); counted by outcome."""
    decision = event.get("decision") or {}
    routine = report_delivery(decision) == "digest" and bool(run.digest_table)
    answer = _hold(event, run) if routine else _tell(DISTRIBUTED, event, run)
    summary = answer["summary"]
    count("Distributions", {"result": summary["outcome"]})
    count("TargetsFailed", {"result": summary["outcome"]}, value=summary["failed"])
    return answer


def export_failure(event: dict[str, Any], run: Telling) -> dict[str, Any]:
    """Notify Export Failure: the certificate could not be exported, to the owners."""
    return _tell(EXPORT_FAILED, event, run)


def rejection(event: dict[str, Any], run: Telling) -> dict[str, Any]:
    """Notify Rejection: who rejected, when and why (read from the approval's cause)."""
    answer = _tell(REJECTED, event, run)
    return {**answer, "decision": rejection_fields(event.get("decision") or {})}


def expiry(event: dict[str, Any], run: Telling) -> dict[str, Any]:
    """Notify Expiry: nobody answered either approval round, to owners and approvers."""
    answer = _tell(EXPIRED, event, run)
    count("Approvals", {"outcome": "expired"})
    return answer


def _hold(event: dict[str, Any], run: Telling) -> dict[str, Any]:
    """Hold each owner's report for the digest, once per (execution, owner): its first line
    (what reached how many targets) is the digest's summary."""
    execution, decision = str(event.get("execution")), event.get("decision") or {}
    messages = compose_outcome(DISTRIBUTED, decision, execution_arn=execution)
    held = 0
    for message in messages:
        owner = str(message["attributes"]["recipient"]["StringValue"])
        held += hold(
            run.dynamodb,
            run.digest_table,
            marker=f"{execution}#{DISTRIBUTED}#{sha256(owner)}",
            owner=owner,
            message=message,
            summary=str(message["message"]).split("\n", 1)[0],
            execution=execution,
            now=run.now,
        )
    run.log.info("outcome held for the digest", extra={"kind": DISTRIBUTED, "held": held})
    results = (decision.get("distribution") or {}).get("results") or []
    return {"sent": len(messages), "held": held, "summary": summarize(list(results))}


def _tell(kind: str, event: dict[str, Any], run: Telling) -> dict[str, Any]:
    """Mail the outcome; a marker per recipient, so a retried task mails only whom it missed."""
    execution, decision = str(event.get("execution")), event.get("decision") or {}
    messages = compose_outcome(kind, decision, execution_arn=execution)
    mailed = [
        publish_once(
            run.dynamodb,
            run.sns,
            table=run.table,
            topic=run.topic,
            execution=execution,
            kind=kind,
            message=message,
            now=run.now,
        )
        for message in messages
    ]
    run.log.info("outcome notified", extra={"kind": kind, "sent": sum(mailed)})
    results = (decision.get("distribution") or {}).get("results") or []
    return {"sent": len(messages), "summary": summarize(list(results))}
