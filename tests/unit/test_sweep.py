"""The sweep's choice of reminders: threshold days only, as ACM would have sent them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from certrelay.sweep import BATCH, SweepReport, _put, reminder

NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
THRESHOLDS = frozenset({45, 30, 15, 7, 3, 1})
ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"


def summary(days: float | None) -> dict[str, Any]:
    found: dict[str, Any] = {"CertificateArn": ARN, "DomainName": "web.example.com"}
    if days is not None:
        found["NotAfter"] = NOW + timedelta(days=days)
    return found


def test_a_certificate_on_a_threshold_day_gets_the_reminder_acm_would_send():
    entry = reminder(summary(30), now=NOW, thresholds=THRESHOLDS)

    assert entry is not None
    assert entry["Source"] == "certrelay.sweep"
    assert entry["DetailType"] == "ACM Certificate Approaching Expiration"
    assert entry["Resources"] == [ARN]
    assert json.loads(entry["Detail"]) == {"DaysToExpiry": 30, "CommonName": "web.example.com"}


def test_days_are_calendar_days_as_triage_counts_them():
    # 29 days and 20 hours ahead is on the 30th calendar day from now (UTC)
    entry = reminder(summary(29 + 20 / 24), now=NOW, thresholds=THRESHOLDS)

    assert entry is not None
    assert json.loads(entry["Detail"])["DaysToExpiry"] == 30


def test_other_days_pending_and_expired_certificates_get_nothing():
    assert reminder(summary(29), now=NOW, thresholds=THRESHOLDS) is None
    assert reminder(summary(100), now=NOW, thresholds=THRESHOLDS) is None
    assert reminder(summary(-1), now=NOW, thresholds=THRESHOLDS) is None
    assert reminder(summary(None), now=NOW, thresholds=THRESHOLDS) is None


class RefusingOnce:
    """PutEvents that refuses the first entry of its first call (a throttled entry)."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(len(Entries))
        if len(self.calls) == 1:
            return {
                "Entries": [{"ErrorCode": "ThrottlingException"}]
                + [{"EventId": "e"}] * (len(Entries) - 1)
            }
        return {"Entries": [{"EventId": "e"}] * len(Entries)}


class AlwaysRefusing:
    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Entries": [{"ErrorCode": "AccessDeniedException"}] * len(Entries)}


def entries(count: int) -> list[dict[str, Any]]:
    return [{"Resources": [f"{ARN}-{i}"]} for i in range(count)]


def test_a_refused_entry_is_retried_once_alone():
    events = RefusingOnce()
    report = SweepReport()

    _put(events, entries(BATCH), report)  # type: ignore[arg-type]

    assert events.calls == [BATCH, 1]
    assert report.sent == BATCH
    assert report.failed == []


def test_an_entry_refused_twice_is_reported_with_its_certificate():
    report = SweepReport()

    _put(AlwaysRefusing(), entries(2), report)  # type: ignore[arg-type]

    assert report.sent == 0
    assert report.failed == [f"{ARN}-0: AccessDeniedException", f"{ARN}-1: AccessDeniedException"]
