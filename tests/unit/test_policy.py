"""The triage policy and the plan it returns, one behaviour per test."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from certrelay import approval_policy, policy
from certrelay.certificates import Certificate
from certrelay.owners import Owners
from certrelay.policy import Decision, Severity, decide
from certrelay.profiles import Profile, S3Target
from tests.unit.factories import ARN, NOW, certificate, event

THRESHOLDS = frozenset({45, 30, 15, 7, 3, 1})
ALL_DAYS = frozenset(range(-5, 60))
OWNED = Owners(("web@example.com",), None, None, "tag")
WEB = Profile(
    owners=["web@example.com"],
    approvers=["lead@example.com"],
    targets=[S3Target(kind="s3", bucket="partner-bundles")],
)
OWNED_WITH_TARGETS = Owners(("web@example.com",), WEB, "web", "profile")


def approaching(days: int, cert: Certificate | None, owners: Owners = OWNED, **kw: Any) -> Decision:
    thresholds = kw.pop("thresholds", THRESHOLDS)
    return decide(
        event("Approaching Expiration", DaysToExpiry=days, **kw),
        cert,
        owners,
        now=NOW,
        thresholds=thresholds,
    )


def test_severities_are_ordered_from_informational_to_critical() -> None:
    ranks = [severity.rank for severity in Severity]
    assert [s.value for s in Severity] == ["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
    assert ranks == sorted(ranks)


def test_a_reminder_on_a_non_threshold_day_is_ignored() -> None:
    # GIVEN an imported certificate 8 days from expiry and thresholds 45,30,15,7,3,1
    decision = approaching(8, certificate(not_after=NOW + timedelta(days=8)))
    # THEN the reminder is ignored: the rule should already have filtered it
    assert (decision.route, decision.reason) == (policy.ROUTE_IGNORE, policy.NOT_A_THRESHOLD_DAY)
    assert decision.reasons == (policy.NOT_A_THRESHOLD_DAY,)


def test_a_non_threshold_reminder_is_ignored_even_when_the_certificate_is_gone() -> None:
    decision = approaching(8, None)
    assert decision.reason == policy.NOT_A_THRESHOLD_DAY


def test_a_reminder_for_a_certificate_acm_already_renewed_is_ignored() -> None:
    # GIVEN the event warns of expiry in 30 days but ACM's copy now runs 395 days
    cert = certificate(type="AMAZON_ISSUED", renewal_eligibility="ELIGIBLE")
    decision = approaching(30, replace(cert, not_after=NOW + timedelta(days=395)))
    # THEN the reminder is stale
    assert (decision.route, decision.reason) == (policy.ROUTE_IGNORE, policy.ALREADY_RENEWED)
    assert decision.days_to_expiry == 395


def test_already_renewed_uses_the_events_expiration_date_when_it_has_one() -> None:
    # GIVEN the event names the expiry it warns about explicitly, 2 days before ACM's NotAfter
    cert = certificate(not_after=NOW + timedelta(days=32))
    expiry = (NOW + timedelta(days=30)).isoformat()
    decision = approaching(30, cert, CertificateExpirationDate=expiry)
    assert decision.reason == policy.ALREADY_RENEWED


def test_a_notafter_within_a_day_of_the_warned_expiry_is_not_a_renewal() -> None:
    cert = certificate(not_after=NOW + timedelta(days=30, hours=20))
    decision = approaching(30, cert)
    assert decision.reason == policy.IMPORTED_EXPIRING


@pytest.mark.parametrize(
    ("days", "severity"),
    [
        (45, Severity.LOW),
        (16, Severity.LOW),
        (15, Severity.MEDIUM),
        (8, Severity.MEDIUM),
        (7, Severity.HIGH),
        (4, Severity.HIGH),
        (3, Severity.CRITICAL),
        (1, Severity.CRITICAL),
        (0, Severity.CRITICAL),
    ],
)
def test_an_expiring_imported_certificate_is_notified_with_rising_severity(
    days: int, severity: Severity
) -> None:
    # GIVEN an imported certificate `days` from expiry by ACM's NotAfter
    cert = certificate(not_after=NOW + timedelta(days=days))
    # WHEN its reminder arrives
    decision = approaching(days, cert, thresholds=ALL_DAYS)
    # THEN the owners are told, more urgently as the days fall
    assert (decision.route, decision.reason) == (policy.ROUTE_NOTIFY, policy.IMPORTED_EXPIRING)
    assert decision.severity is severity
    assert decision.days_to_expiry == days


def test_severity_follows_acms_notafter_not_the_events_day_count() -> None:
    # GIVEN the event says 7 days but ACM's NotAfter is two calendar days away
    cert = certificate(not_after=NOW + timedelta(days=2, hours=5))
    decision = approaching(7, cert)
    # THEN days are counted from ACM's NotAfter and the severity is CRITICAL
    assert decision.days_to_expiry == 2
    assert decision.severity is Severity.CRITICAL


def test_an_ineligible_managed_certificate_is_treated_like_an_imported_one() -> None:
    cert = certificate(type="PRIVATE", renewal_eligibility="INELIGIBLE", exportable=True)
    decision = approaching(7, cert)
    assert decision.route == policy.ROUTE_NOTIFY
    assert decision.reason == policy.MANAGED_RENEWAL_INELIGIBLE
    assert decision.severity is Severity.HIGH


@pytest.mark.parametrize("cert_type", ["PRIVATE", "AMAZON_ISSUED"])
def test_an_eligible_managed_certificate_is_informational(cert_type: str) -> None:
    cert = certificate(type=cert_type, renewal_eligibility="ELIGIBLE")
    decision = approaching(7, cert)
    assert (decision.route, decision.reason) == (
        policy.ROUTE_NOTIFY,
        policy.MANAGED_RENEWAL_PENDING,
    )
    assert decision.severity is Severity.INFORMATIONAL


def test_renewal_action_required_needs_attention() -> None:
    cert = certificate(type="PRIVATE", renewal_eligibility="ELIGIBLE")
    decision = decide(
        event("Renewal Action Required", RenewalStatusReason="PCA_INVALID_STATE", DaysToExpiry=45),
        cert,
        OWNED,
        now=NOW,
        thresholds=THRESHOLDS,
    )
    assert (decision.route, decision.reason) == (
        policy.ROUTE_ATTENTION,
        policy.RENEWAL_ACTION_REQUIRED,
    )
    assert decision.severity is Severity.HIGH
    assert "PCA_INVALID_STATE" in decision.summary


@pytest.mark.parametrize(
    ("acm_in_use", "event_in_use", "severity"),
    [
        (True, False, Severity.CRITICAL),
        (False, True, Severity.CRITICAL),
        (False, False, Severity.HIGH),
    ],
)
def test_an_expired_certificate_is_critical_when_in_use(
    acm_in_use: bool, event_in_use: bool, severity: Severity
) -> None:
    cert = certificate(type="PRIVATE", in_use=acm_in_use, not_after=NOW - timedelta(hours=1))
    decision = decide(
        event("Expired", InUse=event_in_use), cert, OWNED, now=NOW, thresholds=THRESHOLDS
    )
    assert (decision.route, decision.reason) == (policy.ROUTE_ATTENTION, policy.CERTIFICATE_EXPIRED)
    assert decision.severity is severity
    assert decision.days_to_expiry == -1


REVOKED = {"status": "REVOKED", "revoked_at": NOW - timedelta(hours=1)}


def test_a_revoked_certificate_is_critical() -> None:
    decision = decide(
        event("Revoked"), certificate(**REVOKED), OWNED, now=NOW, thresholds=THRESHOLDS
    )
    assert (decision.route, decision.reason) == (policy.ROUTE_ATTENTION, policy.CERTIFICATE_REVOKED)
    assert decision.severity is Severity.CRITICAL


def test_a_rotated_certificate_is_informational() -> None:
    decision = decide(event("Rotated"), certificate(), OWNED, now=NOW, thresholds=THRESHOLDS)
    assert (decision.route, decision.reason) == (policy.ROUTE_NOTIFY, policy.CERTIFICATE_ROTATED)
    assert decision.severity is Severity.INFORMATIONAL


@pytest.mark.parametrize(
    ("action", "cert_type", "exportable"),
    [
        ("RENEWAL", "PRIVATE", True),
        ("ISSUANCE", "PRIVATE", True),
        ("RENEWAL", "AMAZON_ISSUED", True),
    ],
)
def test_a_renewed_exportable_certificate_with_targets_is_pending_distribution(
    action: str, cert_type: str, exportable: bool
) -> None:
    cert = certificate(type=cert_type, exportable=exportable, renewal_eligibility="ELIGIBLE")
    decision = decide(
        event("Available", Action=action), cert, OWNED_WITH_TARGETS, now=NOW, thresholds=THRESHOLDS
    )
    assert (decision.route, decision.reason) == (
        policy.ROUTE_DISTRIBUTE,
        policy.DISTRIBUTION_PENDING,
    )
    assert "profile 'web'" in decision.summary


@pytest.mark.parametrize(
    ("action", "cert_type", "exportable", "owners", "reason"),
    [
        ("RENEWAL", "AMAZON_ISSUED", False, OWNED_WITH_TARGETS, policy.CERTIFICATE_RENEWED),
        ("RENEWAL", "PRIVATE", True, OWNED, policy.CERTIFICATE_RENEWED),
        ("ISSUANCE", "PRIVATE", True, OWNED, policy.CERTIFICATE_ISSUED),
        ("IMPORT", "IMPORTED", False, OWNED_WITH_TARGETS, policy.CERTIFICATE_IMPORTED),
        ("REIMPORT", "IMPORTED", False, OWNED, policy.CERTIFICATE_IMPORTED),
    ],
)
def test_other_available_events_are_informational_by_action(
    action: str, cert_type: str, exportable: bool, owners: Owners, reason: str
) -> None:
    cert = certificate(type=cert_type, exportable=exportable)
    decision = decide(
        event("Available", Action=action), cert, owners, now=NOW, thresholds=THRESHOLDS
    )
    assert (decision.route, decision.reason) == (policy.ROUTE_NOTIFY, reason)
    assert decision.severity is Severity.INFORMATIONAL


def test_a_certificate_acm_no_longer_has_is_reported_to_the_fallback_owner() -> None:
    fallback = Owners(("ops@example.com",), None, None, "fallback")
    decision = decide(event("Expired"), None, fallback, now=NOW, thresholds=THRESHOLDS)
    assert (decision.route, decision.reason) == (policy.ROUTE_NOTIFY, policy.CERTIFICATE_NOT_FOUND)
    assert decision.severity is Severity.MEDIUM
    assert decision.reasons == (policy.CERTIFICATE_NOT_FOUND,)
    assert decision.days_to_expiry is None
    assert ARN in decision.summary


def test_an_unowned_certificate_adds_owner_missing_after_the_primary_reason() -> None:
    fallback = Owners(("ops@example.com",), None, None, "fallback")
    decision = approaching(7, certificate(), fallback)
    assert decision.reason == policy.IMPORTED_EXPIRING
    assert decision.reasons == (policy.IMPORTED_EXPIRING, policy.OWNER_MISSING)


def test_an_unknown_profile_tag_adds_profile_unknown() -> None:
    owners = Owners(("web@example.com",), None, "wbe", "tag", ("tag names unknown profile 'wbe'",))
    decision = approaching(7, certificate(), owners)
    assert decision.reasons == (policy.IMPORTED_EXPIRING, policy.PROFILE_UNKNOWN)


def test_owner_missing_and_profile_unknown_both_follow_the_primary_reason() -> None:
    owners = Owners(("ops@example.com",), None, "wbe", "fallback")
    decision = decide(
        event("Revoked"), certificate(**REVOKED), owners, now=NOW, thresholds=THRESHOLDS
    )
    assert decision.reasons == (
        policy.CERTIFICATE_REVOKED,
        policy.OWNER_MISSING,
        policy.PROFILE_UNKNOWN,
    )


def test_an_ignored_decision_carries_only_its_primary_reason() -> None:
    fallback = Owners(("ops@example.com",), None, "wbe", "fallback")
    decision = approaching(8, certificate(), fallback)
    assert decision.reasons == (policy.NOT_A_THRESHOLD_DAY,)


def test_reason_codes_are_unique_pascal_case_strings() -> None:
    codes = [
        value
        for name, value in vars(policy).items()
        if name.isupper()
        and isinstance(value, str)
        and not name.startswith(("ROUTE_", "FINDING_"))
        and value not in (policy.DISTRIBUTION_INCOMPLETE, policy.EXPORT_REFUSED)  # problems only
    ]
    assert len(codes) == len(set(codes)) == 19  # 17, + ExportablePublicRenewed, …Issued
    assert all(code[0].isupper() and code.isalpha() for code in codes)


def test_days_are_calendar_days_ahead_and_rounded_down_once_past() -> None:
    now = datetime(2026, 11, 27, 8, 47, tzinfo=UTC)

    assert policy.days_until(datetime(2026, 12, 12, 8, 46, tzinfo=UTC), now) == 15
    assert policy.days_until(datetime(2026, 11, 27, 23, 0, tzinfo=UTC), now) == 0
    assert policy.days_until(now - timedelta(hours=1), now) == -1
    assert policy.days_until(now - timedelta(days=2), now) == -2


# The consistency table in policy.py, row by row: (event, its detail, ACM's view, why it conflicts)
PAST = {"not_after": NOW - timedelta(days=2)}
PRIVATE = {"type": "PRIVATE", "renewal_eligibility": "ELIGIBLE"}
CONTRADICTIONS = [
    ("Revoked", {}, {}, "ACM says status ISSUED with no revocation date"),
    ("Expired", {}, {}, "ACM says it is valid until 2025-01-08 12:00 UTC (status ISSUED)"),
    ("Approaching Expiration", {"DaysToExpiry": 7}, PAST, "ACM says it expired (2024-12-30"),
    ("Approaching Expiration", {"DaysToExpiry": 1}, {"status": "EXPIRED"}, "ACM says it expired"),
    ("Renewal Action Required", {}, {}, "ACM never renews an imported certificate"),
    ("Renewal Action Required", {}, {**PRIVATE, **REVOKED}, "ACM says it was revoked"),
    ("Renewal Action Required", {}, {**PRIVATE, **PAST}, "ACM says it expired"),
    ("Rotated", {}, REVOKED, "ACM says it was revoked"),
    ("Rotated", {}, PAST, "ACM says it expired"),
    ("Available", {"Action": "RENEWAL"}, {**PRIVATE, **REVOKED}, "ACM says it was revoked"),
    ("Available", {"Action": "RENEWAL"}, {**PRIVATE, **PAST}, "ACM says it expired"),
    ("Available", {"Action": "ISSUANCE"}, {**PRIVATE, "status": "INACTIVE"}, "status INACTIVE"),
    ("Available", {"Action": "RENEWAL"}, {}, "the event says RENEWAL, but the certificate was"),
    ("Available", {"Action": "ISSUANCE"}, {}, "the event says ISSUANCE, but the certificate was"),
    ("Available", {"Action": "IMPORT"}, PRIVATE, "the event says IMPORT, but ACM issued it"),
    ("Available", {"Action": "REIMPORT"}, PAST, "ACM says it expired"),
    ("Expired", {}, {"status": "PENDING_VALIDATION", "not_after": None}, "ACM never issued it"),
    ("Rotated", {"CertificateType": "PRIVATE"}, {}, "event says type 'PRIVATE', ACM says IMPORTED"),
]


@pytest.mark.parametrize(
    ("detail_type", "detail", "acm", "why"),
    CONTRADICTIONS,
    ids=[f"{c[0]}-{c[3][:30]}" for c in CONTRADICTIONS],
)
def test_an_event_that_contradicts_acm_goes_to_operations_only(
    detail_type: str, detail: dict[str, Any], acm: dict[str, Any], why: str
) -> None:
    # GIVEN an event whose kind ACM's current view of the certificate contradicts
    decision = decide(
        event(detail_type, **detail),
        certificate(**acm),
        Owners(("ops@example.com",), None, "wbe", "fallback"),
        now=NOW,
        thresholds=THRESHOLDS,
    )
    # THEN it is inconsistent, says exactly how, and carries no owner reasons and no CRITICAL
    assert (decision.route, decision.reason) == (
        policy.ROUTE_INCONSISTENT,
        policy.EVENT_INCONSISTENT,
    )
    assert decision.reasons == (policy.EVENT_INCONSISTENT,)
    assert decision.severity is Severity.MEDIUM
    assert why in decision.summary
    assert "\n" not in decision.summary


CONSISTENT = [
    ("Revoked", {}, REVOKED, policy.CERTIFICATE_REVOKED),
    ("Revoked", {}, {"status": "REVOKED"}, policy.CERTIFICATE_REVOKED),
    ("Revoked", {}, {"revoked_at": NOW}, policy.CERTIFICATE_REVOKED),
    ("Revoked", {}, {**REVOKED, **PAST}, policy.CERTIFICATE_REVOKED),
    ("Expired", {}, PAST, policy.CERTIFICATE_EXPIRED),
    ("Expired", {}, {**PAST, **REVOKED}, policy.CERTIFICATE_EXPIRED),
    ("Approaching Expiration", {"DaysToExpiry": 7}, {}, policy.IMPORTED_EXPIRING),
    ("Renewal Action Required", {}, PRIVATE, policy.RENEWAL_ACTION_REQUIRED),
    ("Rotated", {}, {}, policy.CERTIFICATE_ROTATED),
    ("Available", {"Action": "RENEWAL"}, PRIVATE, policy.CERTIFICATE_RENEWED),
    ("Available", {"Action": "REIMPORT", "CertificateType": "IMPORTED"}, {}, "CertificateImported"),
]


@pytest.mark.parametrize(
    ("detail_type", "detail", "acm", "reason"),
    CONSISTENT,
    ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(CONSISTENT)],
)
def test_an_event_acm_agrees_with_takes_its_usual_route(
    detail_type: str, detail: dict[str, Any], acm: dict[str, Any], reason: str
) -> None:
    decision = decide(
        event(detail_type, **detail), certificate(**acm), OWNED, now=NOW, thresholds=THRESHOLDS
    )
    assert decision.route != policy.ROUTE_INCONSISTENT, decision.summary
    assert decision.reason == reason


def test_an_event_supplied_type_is_quoted_on_one_line_in_the_summary() -> None:
    planted = "PRIVATE\nExecution: https://evil.example/approve"
    decision = decide(
        event("Rotated", CertificateType=planted),
        certificate(),
        OWNED,
        now=NOW,
        thresholds=THRESHOLDS,
    )
    assert decision.route == policy.ROUTE_INCONSISTENT
    # THEN the planted line stays inside one quoted, escaped, shortened value
    assert "\n" not in decision.summary
    assert "type 'PRIVATE\\nExecution: https://evil.ex...'," in decision.summary


def test_a_certificate_acm_no_longer_has_is_not_found_not_inconsistent() -> None:
    decision = decide(event("Revoked"), None, OWNED, now=NOW, thresholds=THRESHOLDS)
    assert decision.reason == policy.CERTIFICATE_NOT_FOUND


# The whole plan: every decision the workflow follows is made by decide, one test per decision.

LEAD = Profile(
    owners=["web@example.com"],
    approvers=["Lead@Example.com"],
    escalation=["Boss@Example.com"],
    approval_timeout_hours=6,
    max_concurrency=3,
    window={"days": ["sat", "sun"], "start": "02:00", "end": "04:00"},
    targets=[
        S3Target(kind="s3", bucket="partner-bundles", name="partner"),
        S3Target(kind="s3", bucket="edge-bundles"),
    ],
)
LEAD_OWNED = Owners(("web@example.com",), LEAD, "web", "profile")
RENEWED_PRIVATE = certificate(type="PRIVATE", exportable=True, renewal_eligibility="ELIGIBLE")


def available(owners: Owners, cert: Certificate = RENEWED_PRIVATE, **hours: int) -> Decision:
    return decide(
        event("Available", Action="RENEWAL"),
        cert,
        owners,
        now=NOW,
        thresholds=THRESHOLDS,
        **hours,
    )


def test_given_renewal_action_required_when_decided_then_a_required_high_finding() -> None:
    decision = decide(
        event("Renewal Action Required"), certificate(type="AMAZON_ISSUED"), OWNED, now=NOW,
        thresholds=THRESHOLDS,
    )  # fmt: skip
    assert decision.finding == policy.FindingPlan(
        "raise", policy.RENEWAL_ACTION_REQUIRED, Severity.HIGH, required=True
    )


@pytest.mark.parametrize(
    ("acm_in_use", "event_in_use", "severity"),
    [
        (True, False, Severity.CRITICAL),
        (False, True, Severity.CRITICAL),
        (False, False, Severity.HIGH),
    ],
)
def test_given_an_expired_certificate_when_decided_then_its_finding_is_critical_only_in_use(
    acm_in_use: bool, event_in_use: bool, severity: Severity
) -> None:
    # GIVEN a certificate past its NotAfter, in use by ACM's account or by the event's, or not
    cert = certificate(not_after=NOW - timedelta(days=1), in_use=acm_in_use)
    # WHEN the Expired event is decided
    decision = decide(
        event("Expired", InUse=event_in_use), cert, OWNED, now=NOW, thresholds=THRESHOLDS
    )
    # THEN the plan raises CertificateExpired with that severity, and the decision is as severe
    assert decision.finding == policy.FindingPlan(
        "raise", policy.CERTIFICATE_EXPIRED, severity, required=True
    )
    assert decision.severity is severity


def test_given_a_revoked_certificate_when_decided_then_it_raises_a_critical_finding() -> None:
    cert = certificate(status="REVOKED", revoked_at=NOW - timedelta(hours=1))
    decision = decide(event("Revoked"), cert, OWNED, now=NOW, thresholds=THRESHOLDS)
    assert decision.finding is not None
    assert (decision.finding.problem, decision.finding.severity) == (
        policy.CERTIFICATE_REVOKED,
        Severity.CRITICAL,
    )


def test_given_no_owner_when_a_reminder_is_decided_then_owner_missing_is_raised_low() -> None:
    # GIVEN an imported certificate nobody owns, 7 days from expiry (a MEDIUM..HIGH reminder)
    fallback = Owners(("ops@example.com",), None, None, "fallback")
    decision = approaching(7, certificate(), fallback)
    # THEN the plan raises OwnerMissing with its own LOW severity, and the run does not hang on it
    assert decision.finding == policy.FindingPlan("raise", policy.OWNER_MISSING, Severity.LOW)
    assert decision.severity is Severity.HIGH


@pytest.mark.parametrize("action", ["RENEWAL", "ISSUANCE", "IMPORT", "REIMPORT"])
def test_given_a_new_certificate_without_targets_when_decided_then_open_findings_resolve(
    action: str,
) -> None:
    cert_type = "IMPORTED" if action in ("IMPORT", "REIMPORT") else "PRIVATE"
    cert = certificate(type=cert_type, exportable=cert_type == "PRIVATE")
    decision = decide(
        event("Available", Action=action), cert, OWNED, now=NOW, thresholds=THRESHOLDS
    )
    assert decision.finding == policy.FindingPlan("resolve")


def test_given_a_certificate_acm_no_longer_has_when_decided_then_open_findings_resolve() -> None:
    owners = Owners(("ops@example.com",), None, None, "fallback")
    decision = decide(event("Expired"), None, owners, now=NOW, thresholds=THRESHOLDS)
    assert decision.finding == policy.FindingPlan("resolve")


@pytest.mark.parametrize(
    "decided",
    [
        lambda: approaching(8, certificate()),  # ignored: not a reminder day
        lambda: approaching(30, certificate(type="AMAZON_ISSUED", renewal_eligibility="ELIGIBLE")),
        lambda: decide(  # inconsistent: a Revoked event for an issued certificate
            event("Revoked"), certificate(), OWNED, now=NOW, thresholds=THRESHOLDS
        ),
        lambda: available(LEAD_OWNED),  # distribute: the findings close once it is distributed
    ],
    ids=["ignored", "managed-renewal-pending", "inconsistent", "distribute"],
)
def test_given_nothing_to_record_when_decided_then_the_plan_has_no_finding(
    decided: Any,
) -> None:
    assert decided().finding is None


def test_given_a_profile_needing_approval_when_decided_then_the_plan_names_its_approvers() -> None:
    # GIVEN a renewed private certificate whose profile names an approver, an escalation contact
    # and a 6-hour approval timeout
    decision = available(LEAD_OWNED, approval_timeout_hours=24, escalation_timeout_hours=12)
    # THEN the plan asks the approvers (addresses lower-cased) and waits 6 h, then 12 h
    assert decision.approval == policy.ApprovalPlan(
        mode="human",
        approvers=("lead@example.com",),
        escalation=("boss@example.com",),
        timeout_seconds=6 * 3600,
        escalation_timeout_seconds=12 * 3600,
        targets=2,
        approver="human",
        reason=approval_policy.POLICY_HUMAN,
        reasons=(approval_policy.POLICY_HUMAN,),
    )


def test_given_a_profile_without_a_timeout_when_decided_then_the_stacks_hours_apply() -> None:
    decision = available(OWNED_WITH_TARGETS, approval_timeout_hours=48)
    assert decision.approval is not None
    assert (decision.approval.mode, decision.approval.timeout_seconds) == ("human", 48 * 3600)


def test_given_an_auto_approval_profile_when_decided_then_the_mode_is_auto() -> None:
    auto = Owners(
        ("web@example.com",), LEAD.model_copy(update={"approval": "auto"}), "web", "profile"
    )
    decision = available(auto)
    assert decision.approval is not None
    assert decision.approval.mode == "auto"
    assert (decision.approval.approver, decision.approval.reason) == ("policy", "PolicyAuto")


UNLESS_CHANGED = Owners(
    ("web@example.com",),
    LEAD.model_copy(update={"approval": "unless-changed"}),
    "web",
    "profile",
)
SHAPED = replace(
    RENEWED_PRIVATE,
    domain="Web.Example.com",
    sans=("web.example.com", "api.example.com"),
    key_algorithm="RSA_2048",
    issuer="arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/ca-1",
)


def last_distribution(**changes: Any) -> approval_policy.LastDistribution:
    """A verified, successful last distribution of SHAPED to LEAD's two targets."""
    shape = policy.current_shape(SHAPED, ["web#partner", "web#2"])
    return approval_policy.LastDistribution(
        **{"shape": shape, "serial": "0a:0a", "verified": True, "last_run_succeeded": True}
        | changes
    )


def test_given_unless_changed_and_a_like_for_like_renewal_then_the_policy_approves() -> None:
    # GIVEN approval: unless-changed and a verified last distribution of the same shape
    # WHEN the renewal is decided
    decision = decide(
        event("Available", Action="RENEWAL"),
        SHAPED,
        UNLESS_CHANGED,
        now=NOW,
        thresholds=THRESHOLDS,
        last_distribution=last_distribution(),
    )
    # THEN the plan says the policy approves, because it is like-for-like
    assert decision.approval is not None
    assert (decision.approval.mode, decision.approval.approver) == ("unless-changed", "policy")
    assert decision.approval.reasons == (approval_policy.LIKE_FOR_LIKE,)


def test_given_unless_changed_and_a_new_name_then_a_person_is_asked_why() -> None:
    renewed_with_a_new_name = replace(SHAPED, sans=(*SHAPED.sans, "new.example.com"))

    decision = decide(
        event("Available", Action="RENEWAL"),
        renewed_with_a_new_name,
        UNLESS_CHANGED,
        now=NOW,
        thresholds=THRESHOLDS,
        last_distribution=last_distribution(),
    )

    assert decision.approval is not None
    assert decision.approval.approver == "human"
    assert decision.approval.reasons == (approval_policy.NAMES_CHANGED,)


def test_given_unless_changed_and_nothing_on_record_then_a_first_distribution_asks_a_person():
    decision = available(UNLESS_CHANGED, SHAPED)

    assert decision.approval is not None
    assert (decision.approval.approver, decision.approval.reason) == (
        "human",
        approval_policy.FIRST_DISTRIBUTION,
    )


def test_the_current_shape_is_the_lower_cased_names_key_issuer_and_target_ids() -> None:
    shape = policy.current_shape(SHAPED, ["web#partner"])

    assert shape == approval_policy.Shape(
        names=frozenset({"web.example.com", "api.example.com"}),
        key_algorithm="RSA_2048",
        issuer="arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/ca-1",
        targets=frozenset({"web#partner"}),
    )


def test_given_a_profile_with_targets_when_decided_then_the_plan_names_them_by_reference() -> None:
    decision = available(LEAD_OWNED)
    # THEN each target by its id and kind, three at once, inside the profile's window
    assert decision.distribution == policy.DistributionPlan(
        targets=(policy.TargetRef("web#partner", "s3"), policy.TargetRef("web#2", "s3")),
        max_concurrency=3,
        window=LEAD.window,
    )


def test_given_a_profile_without_limits_when_decided_then_ten_at_once_and_no_window() -> None:
    decision = available(OWNED_WITH_TARGETS)
    assert decision.distribution is not None
    assert decision.distribution.max_concurrency == policy.DEFAULT_MAX_CONCURRENCY == 10
    assert decision.distribution.window is None


def test_given_a_route_other_than_distribute_then_no_approval_and_no_targets() -> None:
    decision = available(LEAD_OWNED, cert=certificate(type="AMAZON_ISSUED", exportable=False))
    assert decision.route == policy.ROUTE_NOTIFY
    assert (decision.approval, decision.distribution) == (None, None)


@pytest.mark.parametrize(
    ("problem", "severity"),
    [
        (policy.RENEWAL_ACTION_REQUIRED, Severity.HIGH),
        (policy.CERTIFICATE_EXPIRED, Severity.HIGH),
        (policy.CERTIFICATE_REVOKED, Severity.CRITICAL),
        (policy.DISTRIBUTION_INCOMPLETE, Severity.HIGH),
        (policy.EXPORT_REFUSED, Severity.HIGH),
        (policy.OWNER_MISSING, Severity.LOW),
    ],
)
def test_each_problem_raised_later_has_one_severity_in_the_policy(
    problem: str, severity: Severity
) -> None:
    assert policy.finding_severity(problem) is severity


def test_an_unknown_problem_has_no_severity() -> None:
    with pytest.raises(ValueError, match=r"unknown problem 'Bogus'; known: "):
        policy.finding_severity("Bogus")


# --- exportable public certificates (issue 13) ------------------------------------------------


def _public(export: str | None) -> Certificate:
    """An AMAZON_ISSUED certificate as DescribeCertificate tells it, Options.Export as given."""
    from certrelay.certificates import certificate_from_description

    detail: dict[str, Any] = {
        "CertificateArn": ARN,
        "DomainName": "www.example.com",
        "Type": "AMAZON_ISSUED",
        "Status": "ISSUED",
        "Serial": "0a:1b",
        "NotBefore": NOW - timedelta(days=1),
        "NotAfter": NOW + timedelta(days=197),
        "RenewalEligibility": "ELIGIBLE",
    }
    if export is not None:
        detail["Options"] = {"Export": export}
    return certificate_from_description(detail, {"certrelay:profile": "web"})


@pytest.mark.parametrize(
    ("action", "public_reason"),
    [
        ("RENEWAL", policy.EXPORTABLE_PUBLIC_RENEWED),
        ("ISSUANCE", policy.EXPORTABLE_PUBLIC_ISSUED),
    ],
)
def test_an_exportable_public_certificate_with_targets_is_distributed_like_a_private_one(
    action: str, public_reason: str
) -> None:
    # GIVEN ACM says the public certificate's Options.Export is ENABLED, and its profile has targets
    cert = _public("ENABLED")
    # WHEN ACM says it is available (the event's Exported, not exported yet, changes nothing)
    decision = decide(
        event("Available", Action=action, CertificateType="AMAZON_ISSUED", Exported=False),
        cert,
        OWNED_WITH_TARGETS,
        now=NOW,
        thresholds=THRESHOLDS,
    )
    # THEN it goes the private certificates' way, and the plan says why a public one does
    assert (decision.route, decision.reason) == (
        policy.ROUTE_DISTRIBUTE,
        policy.DISTRIBUTION_PENDING,
    )
    assert decision.reasons[:2] == (policy.DISTRIBUTION_PENDING, public_reason)
    assert decision.summary.startswith("Exportable public certificate www.example.com is ")
    assert decision.approval is not None
    assert decision.distribution is not None


@pytest.mark.parametrize("export", ["DISABLED", None])
def test_a_public_certificate_acm_does_not_let_export_keeps_its_old_route(
    export: str | None,
) -> None:
    # GIVEN a public certificate ACM will not export, even though the event claims Exported
    cert = _public(export)
    decision = decide(
        event("Available", Action="RENEWAL", CertificateType="AMAZON_ISSUED", Exported=True),
        cert,
        OWNED_WITH_TARGETS,
        now=NOW,
        thresholds=THRESHOLDS,
    )
    # THEN the owners hear it was renewed; nothing is planned for export
    assert (decision.route, decision.reason) == (policy.ROUTE_NOTIFY, policy.CERTIFICATE_RENEWED)
    assert policy.EXPORTABLE_PUBLIC_RENEWED not in decision.reasons
    assert decision.distribution is None


def test_a_private_certificate_carries_no_public_reason() -> None:
    cert = certificate(type="PRIVATE", exportable=True, renewal_eligibility="ELIGIBLE")
    decision = decide(
        event("Available", Action="RENEWAL"),
        cert,
        OWNED_WITH_TARGETS,
        now=NOW,
        thresholds=THRESHOLDS,
    )
    assert decision.route == policy.ROUTE_DISTRIBUTE
    assert not {policy.EXPORTABLE_PUBLIC_RENEWED, policy.EXPORTABLE_PUBLIC_ISSUED} & set(
        decision.reasons
    )
