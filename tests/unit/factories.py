"""Builders shared by the unit tests: one fixed moment, one certificate ARN, events by kind."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
