"""The reconciliation sweep: catch the expiry reminders ACM's best-effort events missed.

Once a day the sweep pages through ACM's certificates and, for each one whose days to expiry is
a threshold day today, puts the same "ACM Certificate Approaching Expiration" event ACM would
have sent on the default bus (source `certrelay.sweep`, since `aws.*` sources are AWS's own).
The stack's rule sends it into the same workflow, whose Record Event gate keys on the
certificate, serial and day count: a reminder ACM did send and the sweep's copy of it end in one
notification; one ACM missed is caught the same day.

Certificates are read from ListCertificates' summaries only (NotAfter is in each summary), so
10,000 certificates cost ten list calls, not ten thousand describes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from certrelay.reminders import APPROACHING_EXPIRATION_DETAIL_TYPE, SWEEP_SOURCE, days_until

if TYPE_CHECKING:
    from mypy_boto3_acm import ACMClient
    from mypy_boto3_events import EventBridgeClient

PAGE_SIZE = 1000  # ListCertificates' largest page
BATCH = 10  # PutEvents takes at most ten entries


@dataclass
class SweepReport:
    """What one sweep saw and sent (the function returns it; the logs keep it)."""

    listed: int = 0
    due: int = 0
    sent: int = 0
    failed: list[str] = field(default_factory=list)  # "<arn>: <error code>"

    def as_dict(self) -> dict[str, Any]:
        return {"listed": self.listed, "due": self.due, "sent": self.sent, "failed": self.failed}


def sweep(
    acm: ACMClient,
    events: EventBridgeClient,
    *,
    now: datetime,
    thresholds: frozenset[int],
) -> SweepReport:
    """List every issued certificate; put a reminder for each one on a threshold day today."""
    report = SweepReport()
    due: list[dict[str, Any]] = []
    for summary in _issued(acm):
        report.listed += 1
        event = reminder(summary, now=now, thresholds=thresholds)
        if event is not None:
            due.append(event)
    report.due = len(due)
    for batch in _batches(due, BATCH):
        _put(events, batch, report)
    return report


def reminder(
    summary: dict[str, Any], *, now: datetime, thresholds: frozenset[int]
) -> dict[str, Any] | None:
    """The PutEvents entry ACM would have sent for this certificate today, or None."""
    not_after = summary.get("NotAfter")
    if not isinstance(not_after, datetime):
        return None  # a certificate still pending validation has no expiry yet
    days = days_until(not_after, now)
    if days not in thresholds:
        return None
    arn = str(summary["CertificateArn"])
    detail = {"DaysToExpiry": days, "CommonName": str(summary.get("DomainName") or "")}
    return {
        "Source": SWEEP_SOURCE,
        "DetailType": APPROACHING_EXPIRATION_DETAIL_TYPE,
        "Resources": [arn],
        "Detail": json.dumps(detail),
    }


def _issued(acm: ACMClient) -> Iterator[dict[str, Any]]:
    """Every ISSUED certificate summary, page by page (all key types, not only RSA-2048)."""
    pages = acm.get_paginator("list_certificates").paginate(
        CertificateStatuses=["ISSUED"],
        Includes={"keyTypes": list(_KEY_TYPES)},  # type: ignore[arg-type]
        PaginationConfig={"PageSize": PAGE_SIZE},
    )
    for page in pages:
        yield from page.get("CertificateSummaryList", [])  # type: ignore[misc]


# ListCertificates returns only RSA_1024 and RSA_2048 certificates unless asked for the others.
_KEY_TYPES = (
    "RSA_1024",
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "EC_prime256v1",
    "EC_secp384r1",
    "EC_secp521r1",
)


def _batches(items: list[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _put(events: EventBridgeClient, batch: list[dict[str, Any]], report: SweepReport) -> None:
    """Put one batch; an entry EventBridge refuses is retried once, then reported."""
    pending = batch
    for _attempt in range(2):
        response = events.put_events(Entries=pending)  # type: ignore[arg-type]
        refused = []
        for entry, result in zip(pending, response["Entries"], strict=True):
            if "EventId" in result:
                report.sent += 1
            else:
                refused.append((entry, result.get("ErrorCode", "unknown")))
        if not refused:
            return
        pending = [entry for entry, _code in refused]
    report.failed.extend(f"{entry['Resources'][0]}: {code}" for entry, code in refused)
