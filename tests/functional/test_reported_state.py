"""`LocalEngine.reported_event` (what `local run --cert` does): ACM ends up saying what the event
says, as it would on AWS when ACM sends that event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from certrelay.local.engine import LocalEngine

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    with LocalEngine() as local:
        yield local


def describe(engine: LocalEngine, name: str) -> dict[str, Any]:
    acm = boto3.client("acm", region_name=engine.fleet.region)
    arn = engine.certificates[name].arn
    description: dict[str, Any] = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    return description


def sample(name: str, **detail: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    event["detail"].update(detail)
    return event


def test_available_renewal_issues_a_new_serial_and_notafter_under_the_same_arn(engine):
    before = describe(engine, "web-private")

    event = engine.reported_event(sample("available.json"), "web-private")

    after = describe(engine, "web-private")
    assert after["CertificateArn"] == before["CertificateArn"] == event["resources"][0]
    assert after["Serial"] != before["Serial"]
    assert after["NotAfter"] > before["NotAfter"]
    assert after["Status"] == "ISSUED"


def test_revoked_revokes_it_with_a_date_and_a_reason(engine):
    engine.reported_event(sample("revoked.json"), "orphan")

    after = describe(engine, "orphan")
    assert after["Status"] == "REVOKED"
    assert after["RevokedAt"] is not None
    assert after["RevocationReason"] == "KEY_COMPROMISE"


def test_expired_moves_notafter_into_the_past(engine):
    event = engine.reported_event(sample("expired.json"), "public-site")

    after = describe(engine, "public-site")
    assert after["NotAfter"] < engine.now
    assert after["Status"] == "EXPIRED"
    assert event["detail"]["CertificateExpirationDate"] == after["NotAfter"].strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def test_approaching_expiration_sets_notafter_that_many_days_ahead(engine):
    event = engine.reported_event(
        sample("approaching-expiration.json", DaysToExpiry=3), "legacy-imported"
    )

    after = describe(engine, "legacy-imported")
    assert (after["NotAfter"].date() - engine.now.date()).days == 3
    assert event["detail"]["DaysToExpiry"] == 3


def test_an_event_already_true_of_the_certificate_changes_nothing(engine):
    # GIVEN expired-imported expired two days ago WHEN an Expired event is brought about
    before = describe(engine, "expired-imported")
    engine.reported_event(sample("expired.json"), "expired-imported")
    # THEN it is the same certificate
    assert describe(engine, "expired-imported")["Serial"] == before["Serial"]
