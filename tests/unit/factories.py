"""Builders shared by the unit tests: one fixed moment, one certificate ARN, events by kind."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from certrelay.certificates import Certificate
from certrelay.events import AcmEvent, parse_event

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0000aaaa-1111-2222-3333-444455556666"


def event(detail_type: str, **detail: Any) -> AcmEvent:
    """An ACM event of `detail_type` ("Expired", "Available", ...) about ARN, sent at NOW."""
    return parse_event(
        {
            "version": "0",
            "id": "1",
            "detail-type": f"ACM Certificate {detail_type}",
            "source": "aws.acm",
            "account": "123456789012",
            "time": NOW.isoformat(),
            "region": "us-east-1",
            "resources": [ARN],
            "detail": {"CommonName": "legacy.example.com", **detail},
        }
    )


def certificate(**changes: Any) -> Certificate:
    """An imported, in-use certificate about ARN expiring 7 days after NOW, with `changes`."""
    base = Certificate(
        arn=ARN,
        domain="legacy.example.com",
        sans=("legacy.example.com",),
        type="IMPORTED",
        status="ISSUED",
        serial="0a:0b",
        not_before=NOW - timedelta(days=300),
        not_after=NOW + timedelta(days=7),
        in_use=True,
        renewal_eligibility="INELIGIBLE",
        exportable=False,
    )
    return replace(base, **changes)
