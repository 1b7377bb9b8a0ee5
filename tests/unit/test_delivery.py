"""Immediate or digest: which owner mails may wait for the daily digest."""

from __future__ import annotations

from datetime import timedelta

import pytest

from certrelay import policy
from certrelay.certificates import Certificate
from certrelay.delivery import delivery
from certrelay.errors import ProfileError
from certrelay.owners import Owners
from certrelay.policy import Decision, decide
from certrelay.profiles import Profile, S3Target, load_profiles
from tests.unit.factories import NOW, certificate, event


@pytest.mark.parametrize("severity", ["INFORMATIONAL", "LOW", "MEDIUM"])
def test_a_routine_outcome_of_a_digest_profile_waits_for_the_digest(severity: str) -> None:
    # GIVEN a digest profile and an outcome that needs nobody
    # WHEN delivery is decided THEN the mail is held for the digest
    assert delivery(notify_mode="digest", severity=severity, needs_action=False) == "digest"


@pytest.mark.parametrize("severity", ["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"])
def test_an_immediate_profile_is_always_mailed_at_once(severity: str) -> None:
    assert delivery(notify_mode="immediate", severity=severity, needs_action=False) == "immediate"
    assert delivery(notify_mode="immediate", severity=severity, needs_action=True) == "immediate"


@pytest.mark.parametrize("severity", ["INFORMATIONAL", "LOW", "MEDIUM"])
def test_an_outcome_that_needs_action_is_mailed_at_once_even_for_a_digest_profile(
    severity: str,
) -> None:
    assert delivery(notify_mode="digest", severity=severity, needs_action=True) == "immediate"


@pytest.mark.parametrize("severity", ["HIGH", "CRITICAL", "high", "critical"])
def test_a_high_or_critical_outcome_is_mailed_at_once_even_when_routine(severity: str) -> None:
    assert delivery(notify_mode="digest", severity=severity, needs_action=False) == "immediate"


def test_a_profile_mails_at_once_unless_it_asks_for_a_digest() -> None:
    profiles = load_profiles(
        "profiles:\n  web:\n    owners: [a@example.com]\n  batch:\n    notify: digest\n"
    )
    assert profiles["web"].notify == "immediate"
    assert profiles["batch"].notify == "digest"


def test_an_unknown_notify_mode_is_one_line_naming_the_field() -> None:
    with pytest.raises(ProfileError) as caught:
        load_profiles("profiles:\n  web:\n    notify: weekly\n", source="p.yaml")
    assert str(caught.value) == (
        "p.yaml: profile 'web', notify: must be one of 'immediate' or 'digest' (got 'weekly')"
    )


# --- the plan: policy.decide says how the owners' mail about each event goes out -------------

DIGEST_PROFILE = Profile(owners=["web@example.com"], notify="digest")
DIGEST_OWNERS = Owners(("web@example.com",), DIGEST_PROFILE, "web", "profile")
IMMEDIATE_OWNERS = Owners(
    ("web@example.com",), Profile(owners=["web@example.com"]), "web", "profile"
)
THRESHOLDS = frozenset({45, 30, 15, 7, 3, 1})


def _decide(kind: str, cert: Certificate | None, owners: Owners, **detail: object) -> Decision:
    return decide(event(kind, **detail), cert, owners, now=NOW, thresholds=THRESHOLDS)


def test_a_reminder_for_a_certificate_acm_renews_waits_for_the_digest_of_a_digest_profile() -> None:
    # GIVEN a managed, eligible certificate of a digest profile, seven days from expiry
    managed = certificate(type="AMAZON_ISSUED", renewal_eligibility="ELIGIBLE")
    # WHEN ACM's reminder is decided
    decision = _decide("Approaching Expiration", managed, DIGEST_OWNERS, DaysToExpiry=7)
    # THEN it is informational, routine, and held for the digest
    assert decision.reason == policy.MANAGED_RENEWAL_PENDING
    assert (decision.notify, decision.delivery) == ("digest", "digest")


def test_the_same_reminder_of_an_immediate_profile_is_mailed_at_once() -> None:
    managed = certificate(type="AMAZON_ISSUED", renewal_eligibility="ELIGIBLE")
    decision = _decide("Approaching Expiration", managed, IMMEDIATE_OWNERS, DaysToExpiry=7)
    assert (decision.notify, decision.delivery) == ("immediate", "immediate")


@pytest.mark.parametrize(
    ("kind", "changes", "detail"),
    [
        ("Approaching Expiration", {}, {"DaysToExpiry": 30}),  # imported: only its owner renews
        ("Renewal Action Required", {"type": "PRIVATE"}, {}),
        ("Expired", {"not_after": NOW - timedelta(days=1)}, {}),
    ],
    ids=["imported-expiring", "renewal-action-required", "expired"],
)
def test_an_event_that_needs_the_owner_is_mailed_at_once_even_for_a_digest_profile(
    kind: str, changes: dict[str, object], detail: dict[str, object]
) -> None:
    decision = _decide(kind, certificate(**changes), DIGEST_OWNERS, **detail)
    assert decision.notify == "digest"
    assert decision.delivery == "immediate", decision.reasons


def test_an_owner_problem_on_a_routine_event_is_mailed_at_once() -> None:
    # GIVEN a routine renewal whose owner tag holds an address that is not one
    problems = ("certrelay:owner: 'not-an-address' is not an email address",)
    owners = Owners(("web@example.com",), DIGEST_PROFILE, "web", "tag+profile", problems)
    renewed = certificate(type="AMAZON_ISSUED", renewal_eligibility="ELIGIBLE")
    decision = _decide("Available", renewed, owners, Action="RENEWAL")
    # THEN the mail asking to fix the tag ("Please fix") is not held back
    assert decision.reason == policy.CERTIFICATE_RENEWED
    assert decision.delivery == "immediate"


def test_a_renewal_pending_distribution_of_a_digest_profile_waits_for_the_digest() -> None:
    profile = Profile(
        owners=["web@example.com"],
        approval="auto",
        notify="digest",
        targets=[S3Target(kind="s3", bucket="partner-bundles")],
    )
    owners = Owners(("web@example.com",), profile, "web", "profile")
    renewed = certificate(type="PRIVATE", exportable=True, renewal_eligibility="ELIGIBLE")
    decision = _decide("Available", renewed, owners, Action="RENEWAL")
    assert decision.route == policy.ROUTE_DISTRIBUTE
    assert decision.delivery == "digest"


def test_the_fallback_owner_is_always_mailed_at_once() -> None:
    fallback = Owners(("ops@example.com",), None, None, "fallback")
    managed = certificate(type="AMAZON_ISSUED", renewal_eligibility="ELIGIBLE")
    decision = _decide("Approaching Expiration", managed, fallback, DaysToExpiry=7)
    assert (decision.notify, decision.delivery) == ("immediate", "immediate")
