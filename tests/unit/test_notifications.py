"""Owner emails: one SNS message per owner, a short clean subject, a body that says what to do."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from certrelay.certificates import Certificate
from certrelay.events import AcmEvent
from certrelay.mail import console_url_for
from certrelay.notifications import compose_messages
from certrelay.owners import Owners
from certrelay.policy import decide
from tests.unit.factories import ARN, NOW, certificate, event

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:CertrelayStateMachine:run-1"
CONSOLE = console_url_for(EXECUTION)
THRESHOLDS = frozenset({45, 30, 15, 7, 3, 1})
OWNERS = Owners(("alice@example.com", "bob@example.com"), None, None, "tag")
CERT = certificate(sans=("legacy.example.com", "www.legacy.example.com"), serial="0a:1b:2c")


def compose(
    acm_event: AcmEvent, cert: Certificate | None = CERT, owners: Owners = OWNERS
) -> list[dict[str, Any]]:
    decision = decide(acm_event, cert, owners, now=NOW, thresholds=THRESHOLDS)
    return compose_messages(
        acm_event, cert, decision, owners, execution_arn=EXECUTION, console_url=CONSOLE
    )


def test_each_owner_gets_one_message_addressed_by_attribute() -> None:
    # GIVEN two owners WHEN an imported certificate nears expiry
    messages = compose(event("Approaching Expiration", DaysToExpiry=7))
    # THEN each owner has exactly one message whose recipient attribute is that owner
    assert [m["attributes"]["recipient"]["StringValue"] for m in messages] == [
        "alice@example.com",
        "bob@example.com",
    ]
    assert messages[0]["attributes"] == {
        "recipient": {"DataType": "String", "StringValue": "alice@example.com"},
        "severity": {"DataType": "String", "StringValue": "HIGH"},
        "event_kind": {"DataType": "String", "StringValue": "ApproachingExpiration"},
        "certificate": {"DataType": "String", "StringValue": ARN},
    }
    assert set(messages[0]) == {"subject", "message", "attributes"}


def test_the_subject_states_severity_domain_and_urgency() -> None:
    messages = compose(event("Approaching Expiration", DaysToExpiry=7))
    assert (
        messages[0]["subject"]
        == "[certrelay] HIGH: legacy.example.com expires in 7 days (imported)"
    )


def test_the_body_says_what_to_do_by_when_and_gives_the_facts() -> None:
    body = compose(event("Approaching Expiration", DaysToExpiry=7))[0]["message"]
    assert "reimport it into ACM under the same ARN before 2025-01-08 12:00 UTC" in body
    assert ARN in body
    assert "0a:1b:2c" in body
    assert "www.legacy.example.com" in body
    assert "2025-01-08 12:00 UTC (expires in 7 days)" in body
    assert "certrelay:owner tag" in body
    assert CONSOLE in body


def test_owner_problems_and_the_fallback_reason_appear_in_the_body() -> None:
    owners = Owners(
        ("ops@example.com",),
        None,
        "wbe",
        "fallback",
        ("tag certrelay:profile names unknown profile 'wbe'",),
    )
    revoked = replace(CERT, status="REVOKED")
    messages = compose(event("Revoked"), cert=revoked, owners=owners)
    body = messages[0]["message"]
    assert len(messages) == 1
    assert "  - tag certrelay:profile names unknown profile 'wbe'" in body
    assert "fallback owner" in body
    assert "Reasons: CertificateRevoked, OwnerMissing, ProfileUnknown." in body


def test_a_certificate_acm_no_longer_has_is_explained_from_the_event() -> None:
    owners = Owners(("ops@example.com",), None, None, "fallback")
    message = compose(event("Expired"), cert=None, owners=owners)[0]
    assert message["subject"] == "[certrelay] MEDIUM: certificate not found: legacy.example.com"
    assert "not found in ACM" in message["message"]
    assert "ACM no longer has the certificate" in message["message"]


def test_hostile_names_cannot_break_the_subject_or_inject_lines() -> None:
    # GIVEN a certificate whose domain carries control characters and is very long
    cert = replace(CERT, domain="evil.example.com\r\nBcc: x@example.com\x07" + "a" * 200)
    messages = compose(event("Approaching Expiration", DaysToExpiry=7), cert=cert)
    subject = messages[0]["subject"]
    # THEN the subject is short, single-line ASCII and the body has no injected header line
    assert len(subject) <= 100
    assert not re.search(r"[\x00-\x1f\x7f]", subject)
    assert subject.isascii()
    assert subject.endswith("...")
    assert "\nBcc:" not in messages[0]["message"]
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", messages[0]["message"])


EXPIRED_CERT = replace(CERT, not_after=NOW - timedelta(days=1), status="EXPIRED")
PRIVATE_CERT = replace(CERT, type="PRIVATE", renewal_eligibility="ELIGIBLE")


@pytest.mark.parametrize(
    ("acm_event", "cert", "subject"),
    [
        (
            event("Expired", InUse=True),
            EXPIRED_CERT,
            "[certrelay] CRITICAL: legacy.example.com has expired and is in use",
        ),
        (
            event("Renewal Action Required"),
            PRIVATE_CERT,
            "[certrelay] HIGH: legacy.example.com needs action to renew",
        ),
        (event("Rotated"), CERT, "[certrelay] INFORMATIONAL: legacy.example.com was rotated"),
        (
            event("Available", Action="REIMPORT"),
            CERT,
            "[certrelay] INFORMATIONAL: legacy.example.com was imported",
        ),
    ],
)
def test_every_kind_has_a_readable_subject(
    acm_event: AcmEvent, cert: Certificate, subject: str
) -> None:
    assert compose(acm_event, cert)[0]["subject"] == subject


def test_an_event_that_contradicts_acm_tells_no_owner() -> None:
    # GIVEN ACM says the certificate is ISSUED WHEN a Revoked event arrives THEN no owner hears
    assert compose(event("Revoked")) == []


def test_ignored_events_tell_nobody() -> None:
    assert compose(event("Approaching Expiration", DaysToExpiry=8)) == []


@pytest.mark.parametrize(
    ("execution_arn", "url"),
    [
        (
            "arn:aws:states:eu-west-1:123456789012:execution:sm:run",
            "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1"
            "#/v2/executions/details/arn:aws:states:eu-west-1:123456789012:execution:sm:run",
        ),
        (
            "arn:aws-cn:states:cn-north-1:123456789012:execution:sm:run",
            "https://cn-north-1.console.amazonaws.cn/states/home?region=cn-north-1"
            "#/v2/executions/details/arn:aws-cn:states:cn-north-1:123456789012:execution:sm:run",
        ),
        (
            "arn:aws-us-gov:states:us-gov-west-1:123456789012:execution:sm:run",
            "https://us-gov-west-1.console.amazonaws-us-gov.com/states/home?region=us-gov-west-1"
            "#/v2/executions/details/arn:aws-us-gov:states:us-gov-west-1:123456789012:execution:sm:run",
        ),
        ("not-an-arn", ""),
    ],
)
def test_console_links_follow_the_partition(execution_arn: str, url: str) -> None:
    assert console_url_for(execution_arn) == url
