"""Owner emails: one SNS message per owner, a short clean subject, a body that says what to do."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest

from certrelay.certificates import Certificate
from certrelay.events import AcmEvent
from certrelay.mail import console_url_for
from certrelay.notifications import compose_mail
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
) -> dict[str, str] | None:
    decision = decide(acm_event, cert, owners, now=NOW, thresholds=THRESHOLDS)
    return compose_mail(
        acm_event, cert, decision, owners, execution_arn=EXECUTION, console_url=CONSOLE
    )


def composed(
    acm_event: AcmEvent, cert: Certificate | None = CERT, owners: Owners = OWNERS
) -> dict[str, str]:
    mail = compose(acm_event, cert, owners)
    assert mail is not None, "no owner is told"
    return mail


def test_one_mail_carries_what_each_owners_message_is_filtered_and_sorted_by() -> None:
    # GIVEN two owners WHEN an imported certificate nears expiry
    mail = compose(event("Approaching Expiration", DaysToExpiry=7))
    # THEN one mail holds the subject, body and the attributes Notify Owners puts on each
    # owner's message (the recipient is added per owner from the decision's recipients)
    assert mail is not None
    # and how it goes out (Deliver Now?: at once, or held for the owner's daily digest)
    assert set(mail) == {"subject", "message", "severity", "event_kind", "certificate", "delivery"}
    assert (mail["severity"], mail["event_kind"], mail["certificate"], mail["delivery"]) == (
        "HIGH",
        "ApproachingExpiration",
        ARN,
        "immediate",
    )


def test_the_subject_states_severity_domain_and_urgency() -> None:
    mail = composed(event("Approaching Expiration", DaysToExpiry=7))
    assert mail["subject"] == "[certrelay] HIGH: legacy.example.com expires in 7 days (imported)"


def test_the_body_says_what_to_do_by_when_and_gives_the_facts() -> None:
    body = composed(event("Approaching Expiration", DaysToExpiry=7))["message"]
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
    mail = composed(event("Revoked"), cert=revoked, owners=owners)
    body = mail["message"]
    assert "  - tag certrelay:profile names unknown profile 'wbe'" in body
    assert "fallback owner" in body
    assert "Reasons: CertificateRevoked, OwnerMissing, ProfileUnknown." in body


def test_a_certificate_acm_no_longer_has_is_explained_from_the_event() -> None:
    owners = Owners(("ops@example.com",), None, None, "fallback")
    message = composed(event("Expired"), cert=None, owners=owners)
    assert message["subject"] == "[certrelay] MEDIUM: certificate not found: legacy.example.com"
    assert "not found in ACM" in message["message"]
    assert "ACM no longer has the certificate" in message["message"]


def test_hostile_names_cannot_break_the_subject_or_inject_lines() -> None:
    # GIVEN a certificate whose domain carries control characters and is very long
    cert = replace(CERT, domain="evil.example.com\r\nBcc: x@example.com\x07" + "a" * 200)
    mail = composed(event("Approaching Expiration", DaysToExpiry=7), cert=cert)
    subject = mail["subject"]
    # THEN the subject is short, single-line ASCII and the body has no injected header line
    assert len(subject) <= 100
    assert not re.search(r"[\x00-\x1f\x7f]", subject)
    assert subject.isascii()
    assert subject.endswith("...")
    assert "\nBcc:" not in mail["message"]
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", mail["message"])


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
    assert composed(acm_event, cert)["subject"] == subject


def test_an_event_that_contradicts_acm_tells_no_owner() -> None:
    # GIVEN ACM says the certificate is ISSUED WHEN a Revoked event arrives THEN no owner hears
    assert compose(event("Revoked")) is None


def test_ignored_events_tell_nobody() -> None:
    assert compose(event("Approaching Expiration", DaysToExpiry=8)) is None


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
