"""The distribution record on moto DynamoDB: what Record Distribution writes and triage reads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from certrelay import distribution_record as record
from certrelay.approval_policy import Shape

REGION = "us-east-1"
TABLE = "records"
ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SHAPE = Shape(
    names=frozenset({"web.example.com", "api.example.com"}),
    key_algorithm="EC_prime256v1",
    issuer="arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/ca-1",
    targets=frozenset({"web#1", "web#2"}),
)


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    """The template's DistributionRecordTable key schema: pk (certificate ARN) + sk."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def reported(*statuses: str) -> dict[str, Any]:
    """The payload after Report Distribution, one result per status (targets web#1, web#2…)."""
    results = [
        {"target": f"web#{n}", "kind": "s3", "status": status, "detail": "d"}
        for n, status in enumerate(statuses, start=1)
    ]
    complete = all(s == "DISTRIBUTED" for s in statuses)
    return {
        "certificate": {"arn": ARN},
        "profile": "web",
        "bundle": {"serial": "0a:02", "fingerprint": "f" * 64},
        "distribution": {"results": results},
        "report": {
            "complete": complete,
            "outcome": "distributed" if complete else "distribution-incomplete",
        },
    }


def test_nothing_on_record_reads_as_no_last_distribution(dynamodb: Any) -> None:
    assert record.read_last(dynamodb, TABLE, ARN) is None
    assert record.read_record(dynamodb, TABLE, ARN) is None


def test_a_complete_distribution_is_read_back_as_a_verified_successful_last_one(
    dynamodb: Any,
) -> None:
    # GIVEN Record Distribution wrote a distribution that reached both targets
    brief = record.write_distribution(
        dynamodb, TABLE, reported("DISTRIBUTED", "DISTRIBUTED"), SHAPE, execution="x1", now=NOW
    )
    # WHEN triage reads the last distribution
    last = record.read_last(dynamodb, TABLE, ARN)
    # THEN it is the same shape and serial, verified, and the run succeeded
    assert brief == {"serial": "0a:02", "verified": True, "last_run_succeeded": True, "targets": 2}
    assert last is not None
    assert (last.shape, last.serial, last.verified, last.last_run_succeeded) == (
        SHAPE,
        "0a:02",
        True,
        True,
    )


def test_each_target_has_its_own_item_with_serial_fingerprint_time_and_verified(
    dynamodb: Any,
) -> None:
    record.write_distribution(
        dynamodb, TABLE, reported("DISTRIBUTED", "FAILED"), SHAPE, execution="x1", now=NOW
    )

    full = record.read_record(dynamodb, TABLE, ARN)

    assert full is not None
    assert [(t.target, t.verified, t.status) for t in full.targets] == [
        ("web#1", True, "DISTRIBUTED"),
        ("web#2", False, "FAILED"),
    ]
    assert {(t.serial, t.fingerprint, t.distributed_at) for t in full.targets} == {
        ("0a:02", "f" * 64, "2026-12-01T10:00:00Z")
    }
    assert (full.verified, full.last_run_succeeded, full.last_outcome) == (
        False,
        False,
        "distribution-incomplete",
    )


def test_a_refused_export_marks_the_last_run_failed_but_keeps_the_shape(dynamodb: Any) -> None:
    record.write_distribution(
        dynamodb, TABLE, reported("DISTRIBUTED", "DISTRIBUTED"), SHAPE, execution="x1", now=NOW
    )

    marked = record.mark_run_failed(
        dynamodb, TABLE, ARN, outcome=record.EXPORT_FAILED, execution="x2", now=NOW
    )

    last = record.read_last(dynamodb, TABLE, ARN)
    assert marked is True
    assert last is not None
    assert (last.shape, last.verified, last.last_run_succeeded) == (SHAPE, True, False)


def test_a_failed_run_with_nothing_on_record_writes_nothing(dynamodb: Any) -> None:
    marked = record.mark_run_failed(
        dynamodb, TABLE, ARN, outcome=record.EXPORT_FAILED, execution="x2", now=NOW
    )

    assert marked is False
    assert record.read_record(dynamodb, TABLE, ARN) is None
