"""Report Distribution, Notify Export Failure, Notify Rejection and Notify Expiry: tell the
people concerned how a renewal ended, once per recipient however often the task runs; Record
Distribution writes the same ending into the distribution record."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from certrelay.approval_links import digest as sha256
from certrelay.approval_policy import current_shape
from certrelay.certificates import read_certificate
from certrelay.digest import hold
from certrelay.distribution import summarize
from certrelay.distribution_record import EXPORT_FAILED as RECORD_EXPORT_FAILED
from certrelay.distribution_record import mark_run_failed, write_distribution
from certrelay.errors import ConfigurationError
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

SERVICES = ("dynamodb", "sns", "acm")  # every client the states use


@dataclass(frozen=True)
class Telling:
    """What the notify function acts with in one invocation."""

    dynamodb: Any
    sns: Any
    table: str  # the event table, holding one marker per (execution, outcome, recipient)
    topic: str
    log: Logger
    now: datetime
    records: str = ""  # the distribution record table (certrelay.distribution_record)
    clients: Callable[[str], Any] | None = None  # a boto3 client by service (Record: ACM)
    digest_table: str = ""  # where a routine report waits for the owner's daily digest

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        client: Callable[[str], Any],  # a boto3 client by service, kept per container
        log: Logger,
        now: datetime,
    ) -> Telling:
        table, topic = environ["EVENT_TABLE_NAME"], environ["NOTIFICATION_TOPIC_ARN"]
        records = environ.get("DISTRIBUTION_RECORD_TABLE_NAME", "")
        digests = environ.get("DIGEST_TABLE_NAME", "")
        dynamodb, sns = client("dynamodb"), client("sns")
        return cls(dynamodb, sns, table, topic, log, now, records, client, digests)


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
    """Notify Export Failure: the certificate could not be exported, to the owners; its
    distribution record now says the last run failed (approval: unless-changed asks a person)."""
    answer = _tell(EXPORT_FAILED, event, run)
    arn = ((event.get("decision") or {}).get("certificate") or {}).get("arn")
    if run.records and arn:
        marked = mark_run_failed(
            run.dynamodb,
            run.records,
            str(arn),
            outcome=RECORD_EXPORT_FAILED,
            execution=str(event.get("execution")),
            now=run.now,
        )
        run.log.info("last run marked failed", extra={"on_record": marked})
    return answer


def rejection(event: dict[str, Any], run: Telling) -> dict[str, Any]:
    """Notify Rejection: who rejected, when and why (read from the approval's cause)."""
    answer = _tell(REJECTED, event, run)
    return {**answer, "decision": rejection_fields(event.get("decision") or {})}


def expiry(event: dict[str, Any], run: Telling) -> dict[str, Any]:
    """Notify Expiry: nobody answered either approval round, to owners and approvers."""
    answer = _tell(EXPIRED, event, run)
    count("Approvals", {"outcome": "expired"})
    return answer


def record_distribution(event: dict[str, Any], run: Telling) -> dict[str, Any]:
    """Record Distribution: what reached which target (serial, fingerprint, verified) and how
    the run ended, in the distribution record that approval: unless-changed reads next time.
    The certificate's shape (names, key, issuer) is read from ACM again, as triage read it: the
    payload carries no list of names (a hundred SANs would crowd its 256 KiB)."""
    if not run.records or run.clients is None:
        raise ConfigurationError("DISTRIBUTION_RECORD_TABLE_NAME is not set")
    execution, decision = str(event.get("execution")), event.get("decision") or {}
    arn = str((decision.get("certificate") or {}).get("arn") or "")
    certificate = read_certificate(run.clients("acm"), arn)
    targets = [str(t.get("id")) for t in (decision.get("distribution") or {}).get("targets") or []]
    shape = current_shape(certificate, targets) if certificate is not None else None
    written = write_distribution(
        run.dynamodb, run.records, decision, shape, execution=execution, now=run.now
    )
    run.log.info("distribution recorded", extra=written)
    return written


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
