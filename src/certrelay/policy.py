"""The triage policy: what an ACM event means once ACM itself has been re-read.

`decide` is pure: it takes the parsed event, what ACM says now (or None), the resolved owners and
`now`, and returns the whole plan: a route, reason codes, a severity, one human sentence, the
Security Hub finding to raise (with its severity) or resolve, who approves and how, and which
targets receive the certificate, how many at once and in which window. Every other module and
the state machine's Choice states read this plan; none decides again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from certrelay import approval_policy, reasons
from certrelay.approval_policy import LastDistribution
from certrelay.approval_policy import current_shape as current_shape
from certrelay.certificates import Certificate
from certrelay.config import DEFAULT_APPROVAL_HOURS
from certrelay.contradictions import contradicts
from certrelay.delivery import Delivery, NotifyMode, delivery
from certrelay.events import AcmEvent, EventKind
from certrelay.owners import Owners
from certrelay.profiles import MaintenanceWindow
from certrelay.reasons import (
    ALREADY_RENEWED,
    CERTIFICATE_EXPIRED,
    CERTIFICATE_IMPORTED,
    CERTIFICATE_ISSUED,
    CERTIFICATE_NOT_FOUND,
    CERTIFICATE_RENEWED,
    CERTIFICATE_REVOKED,
    CERTIFICATE_ROTATED,
    DISTRIBUTION_PENDING,
    EVENT_INCONSISTENT,
    EXPORTABLE_PUBLIC_ISSUED,
    EXPORTABLE_PUBLIC_RENEWED,
    IMPORTED_EXPIRING,
    MANAGED_RENEWAL_INELIGIBLE,
    MANAGED_RENEWAL_PENDING,
    NOT_A_THRESHOLD_DAY,
    OWNER_MISSING,
    PROFILE_UNKNOWN,
    RENEWAL_ACTION_REQUIRED,
    Severity,
    finding_severity,
)
from certrelay.reminders import days_until
from certrelay.text import certificate_name, expires, on, utc_time

# Routes: the "Route Event?" choice in the state machine branches on these.
ROUTE_IGNORE = "ignore"  # nothing to tell anyone
ROUTE_NOTIFY = "notify"  # tell the owners
ROUTE_ATTENTION = "attention"  # raise a finding and alert the owners
ROUTE_DISTRIBUTE = "distribute"  # ask for approval, then export and distribute
ROUTE_INCONSISTENT = "inconsistent"  # the event contradicts ACM: tell operations, not owners


# The reason codes and severities are certrelay.reasons' (the functions that only raise a finding
# or mail an outcome read them without the event and profile models); the policy's as before.
DISTRIBUTION_INCOMPLETE = reasons.DISTRIBUTION_INCOMPLETE
EXPORT_REFUSED = reasons.EXPORT_REFUSED
FINDING_SEVERITIES = reasons.FINDING_SEVERITIES

# ACM's NotAfter may differ from the event's idea of expiry by rounding; beyond this it moved.
RENEWED_TOLERANCE = timedelta(days=1)

_AVAILABLE_REASONS = {
    "ISSUANCE": CERTIFICATE_ISSUED,
    "RENEWAL": CERTIFICATE_RENEWED,
    "IMPORT": CERTIFICATE_IMPORTED,
    "REIMPORT": CERTIFICATE_IMPORTED,
}


# Primary reasons that are problems in themselves (the attention route): the finding is the point.
_PROBLEM_REASONS = frozenset({RENEWAL_ACTION_REQUIRED, CERTIFICATE_EXPIRED, CERTIFICATE_REVOKED})
# Reasons that end a certificate's open problems: it was renewed or reissued, or it is gone.
_RESOLVING = frozenset(
    {CERTIFICATE_RENEWED, CERTIFICATE_ISSUED, CERTIFICATE_IMPORTED, CERTIFICATE_NOT_FOUND}
)

# Reasons whose mail asks nothing of its owners: with `notify: digest` they wait for the daily
# digest (certrelay.delivery). Any other reason on a decision makes its mail go out at once.
ROUTINE_REASONS = frozenset(
    {
        MANAGED_RENEWAL_PENDING,
        CERTIFICATE_ROTATED,
        CERTIFICATE_ISSUED,
        CERTIFICATE_RENEWED,
        CERTIFICATE_IMPORTED,
        DISTRIBUTION_PENDING,
    }
)

FINDING_RAISE = "raise"
FINDING_RESOLVE = "resolve"
DEFAULT_MAX_CONCURRENCY = 10  # targets distributed at once when the profile sets none


@dataclass(frozen=True)
class FindingPlan:
    """Raise one problem's finding with its severity, or resolve the certificate's open ones."""

    action: str  # FINDING_RAISE or FINDING_RESOLVE
    problem: str | None = None
    severity: Severity | None = None
    # The finding is the run's point: if Security Hub does not take it, the run fails (and the
    # event is released, so a redelivery raises it). An OwnerMissing finding is not.
    required: bool = False


@dataclass(frozen=True)
class ApprovalPlan:
    """Who approves a distribution, in which mode and why, and how long each round waits."""

    mode: approval_policy.Mode  # the profile's approval: human, auto or unless-changed
    approvers: tuple[str, ...]
    escalation: tuple[str, ...]
    timeout_seconds: int
    escalation_timeout_seconds: int
    targets: int
    approver: Literal["human", "policy"] = "human"  # Request Approval, or Approved By Policy
    reason: str = approval_policy.POLICY_HUMAN  # approval_policy's reason code
    reasons: tuple[str, ...] = (approval_policy.POLICY_HUMAN,)


@dataclass(frozen=True)
class TargetRef:
    """A target by reference: Export and Distribute look each one up again in the profiles."""

    id: str
    kind: str


@dataclass(frozen=True)
class DistributionPlan:
    """Which targets receive the certificate, how many at once, and in which window."""

    targets: tuple[TargetRef, ...]
    max_concurrency: int
    window: MaintenanceWindow | None


@dataclass(frozen=True)
class Decision:
    """What to do about one event, and why: the whole plan the state machine follows."""

    route: str
    reason: str
    reasons: tuple[str, ...]
    severity: Severity
    summary: str
    days_to_expiry: int | None
    finding: FindingPlan | None = None
    approval: ApprovalPlan | None = None
    distribution: DistributionPlan | None = None
    notify: NotifyMode = "immediate"  # the profile's notify mode, for the mails of later steps
    delivery: Delivery = "immediate"  # how the owners' mail about this event goes out


def imported_severity(days: int) -> Severity:
    """The severity ladder for a certificate nobody but its owner can renew."""
    if days <= 3:
        return Severity.CRITICAL
    if days <= 7:
        return Severity.HIGH
    if days <= 15:
        return Severity.MEDIUM
    return Severity.LOW


def decide(
    event: AcmEvent,
    certificate: Certificate | None,
    owners: Owners,
    *,
    now: datetime,
    thresholds: frozenset[int],
    approval_timeout_hours: int = DEFAULT_APPROVAL_HOURS,
    escalation_timeout_hours: int = DEFAULT_APPROVAL_HOURS,
    last_distribution: LastDistribution | None = None,
) -> Decision:
    """The whole plan for one ACM event. ACM's current view of the certificate wins over the
    event's; the approval hours apply where the profile sets none; `last_distribution` (the
    certificate's distribution record) is what `approval: unless-changed` compares with."""
    days = (
        days_until(certificate.not_after, now)
        if certificate is not None and certificate.not_after
        else None
    )
    route, reason, severity, summary = _judge(event, certificate, owners, days, thresholds, now)
    reasons = [reason]
    public = certificate is not None and certificate.type == "AMAZON_ISSUED"
    if route == ROUTE_DISTRIBUTE and public:
        reasons += [_exportable_public(event)]
    if route not in (ROUTE_IGNORE, ROUTE_INCONSISTENT) and certificate is not None:
        reasons += [OWNER_MISSING] if owners.fallback else []
        reasons += [PROFILE_UNKNOWN] if owners.profile_unknown else []
    distributes = route == ROUTE_DISTRIBUTE
    hours = (approval_timeout_hours, escalation_timeout_hours)
    notify: NotifyMode = owners.profile.notify if owners.profile is not None else "immediate"
    # a mail that asks the owners to fix their tags ("Please fix") is never routine
    routine = all(r in ROUTINE_REASONS for r in reasons) and not owners.problems
    return Decision(
        route,
        reason,
        tuple(reasons),
        severity,
        summary,
        days,
        finding=_finding(route, reason, reasons, in_use=_in_use(event, certificate)),
        approval=_approval(owners, certificate, last_distribution, *hours) if distributes else None,
        distribution=_distribution(owners) if distributes else None,
        notify=notify,
        delivery=delivery(notify_mode=notify, severity=severity.value, needs_action=not routine),
    )


def _finding(route: str, reason: str, reasons: list[str], *, in_use: bool) -> FindingPlan | None:
    """Raise a Security Hub finding, resolve the certificate's open ones, or neither.

    An inconsistent event changes nothing about the certificate's findings: operations hear
    of it, and a forged Revoked event raises no CRITICAL finding.
    """
    if route in (ROUTE_IGNORE, ROUTE_INCONSISTENT):
        return None
    if reason in _PROBLEM_REASONS:
        severity = finding_severity(reason, in_use=in_use)
        return FindingPlan(FINDING_RAISE, reason, severity, required=True)
    if OWNER_MISSING in reasons:
        return FindingPlan(FINDING_RAISE, OWNER_MISSING, finding_severity(OWNER_MISSING))
    if reason in _RESOLVING:
        return FindingPlan(FINDING_RESOLVE)
    return None


def _approval(
    owners: Owners,
    certificate: Certificate | None,
    last: LastDistribution | None,
    timeout_hours: int,
    escalation_hours: int,
) -> ApprovalPlan | None:
    """Who approves the distribution (approval_policy judges), and how long each round waits."""
    profile, name = owners.profile, owners.profile_name
    if profile is None or name is None or certificate is None:
        return None
    shape = current_shape(certificate, [target_id for target_id, _ in profile.target_ids(name)])
    judgement = approval_policy.judge(profile.approval, shape, last)
    return ApprovalPlan(
        mode=profile.approval,
        approvers=tuple(str(a).lower() for a in profile.approvers),
        escalation=tuple(str(e).lower() for e in profile.escalation),
        timeout_seconds=(profile.approval_timeout_hours or timeout_hours) * 3600,
        escalation_timeout_seconds=escalation_hours * 3600,
        targets=len(profile.targets),
        approver=judgement.approver,
        reason=judgement.reason,
        reasons=judgement.reasons,
    )


def _distribution(owners: Owners) -> DistributionPlan | None:
    """The profile's targets by id and kind, how many run at once, and its window."""
    profile, name = owners.profile, owners.profile_name
    if profile is None or name is None:
        return None
    return DistributionPlan(
        targets=tuple(TargetRef(target_id, t.kind) for target_id, t in profile.target_ids(name)),
        max_concurrency=profile.max_concurrency or DEFAULT_MAX_CONCURRENCY,
        window=profile.window,
    )


def _exportable_public(event: AcmEvent) -> str:
    """Why a public certificate is distributed: ACM's Options.Export said ENABLED (the event's
    Exported or Exportable fields are never read for this)."""
    if event.detail.action == "RENEWAL":
        return EXPORTABLE_PUBLIC_RENEWED
    return EXPORTABLE_PUBLIC_ISSUED


def _in_use(event: AcmEvent, cert: Certificate | None) -> bool:
    """In use by ACM's account of it, or by the event's (an Expired event's InUse)."""
    return cert is not None and (cert.in_use or bool(event.detail.in_use))


def _judge(
    event: AcmEvent,
    cert: Certificate | None,
    owners: Owners,
    days: int | None,
    thresholds: frozenset[int],
    now: datetime,
) -> tuple[str, str, Severity, str]:
    detail, kind, name = event.detail, event.kind, certificate_name(event, cert)
    if kind is EventKind.APPROACHING_EXPIRATION and detail.days_to_expiry not in thresholds:
        listed = ", ".join(str(day) for day in sorted(thresholds, reverse=True))
        return (
            ROUTE_IGNORE,
            NOT_A_THRESHOLD_DAY,
            Severity.INFORMATIONAL,
            f"{name} expires in {detail.days_to_expiry} days, not a reminder day ({listed}).",
        )
    if cert is None:
        return (
            ROUTE_NOTIFY,
            CERTIFICATE_NOT_FOUND,
            Severity.MEDIUM,
            f"ACM no longer has certificate {event.certificate_arn} ({name}) named by an "
            f"ACM {_title(kind)} event.",
        )
    contradiction = contradicts(event, cert, now=now)
    if contradiction is not None:
        return (
            ROUTE_INCONSISTENT,
            EVENT_INCONSISTENT,
            Severity.MEDIUM,
            f"The ACM {_title(kind)} event about {name} contradicts ACM: {contradiction}. "
            "Nothing was done for its owners.",
        )
    if kind is EventKind.APPROACHING_EXPIRATION:
        return _approaching(event, cert, days, name)
    if kind is EventKind.AVAILABLE:
        return _available(event, cert, owners, name)
    return _after_the_fact(event, cert, days, name)


def _after_the_fact(
    event: AcmEvent, cert: Certificate, days: int | None, name: str
) -> tuple[str, str, Severity, str]:
    """Renewal Action Required, Expired, Revoked, Rotated: something already happened."""
    kind, detail = event.kind, event.detail
    if kind is EventKind.RENEWAL_ACTION_REQUIRED:
        why = f" ({detail.renewal_status_reason})" if detail.renewal_status_reason else ""
        return (
            ROUTE_ATTENTION,
            RENEWAL_ACTION_REQUIRED,
            finding_severity(RENEWAL_ACTION_REQUIRED),
            f"ACM cannot renew {name} until someone acts{why}; it {expires(days)}.",
        )
    if kind is EventKind.EXPIRED:
        in_use = _in_use(event, cert)
        return (
            ROUTE_ATTENTION,
            CERTIFICATE_EXPIRED,
            finding_severity(CERTIFICATE_EXPIRED, in_use=in_use),
            f"{name} has expired{on(cert.not_after)} and is "
            f"{'still in use' if in_use else 'not in use'}.",
        )
    if kind is EventKind.REVOKED:
        return (
            ROUTE_ATTENTION,
            CERTIFICATE_REVOKED,
            finding_severity(CERTIFICATE_REVOKED),
            f"{name} has been revoked.",
        )
    return (
        ROUTE_NOTIFY,
        CERTIFICATE_ROTATED,
        Severity.INFORMATIONAL,
        f"ACM rotated {name}; it is now valid until {utc_time(cert.not_after)}.",
    )


def _approaching(
    event: AcmEvent, cert: Certificate, days: int | None, name: str
) -> tuple[str, str, Severity, str]:
    detail = event.detail
    warned_expiry = detail.certificate_expiration_date or (
        event.time + timedelta(days=detail.days_to_expiry or 0)
    )
    if cert.not_after is not None and cert.not_after > warned_expiry + RENEWED_TOLERANCE:
        return (
            ROUTE_IGNORE,
            ALREADY_RENEWED,
            Severity.INFORMATIONAL,
            f"{name} was already renewed: ACM's copy is valid until {utc_time(cert.not_after)}, "
            f"after the {utc_time(warned_expiry)} the event warned about.",
        )
    remaining = days if days is not None else (detail.days_to_expiry or 0)
    if cert.type == "IMPORTED":
        return (
            ROUTE_NOTIFY,
            IMPORTED_EXPIRING,
            imported_severity(remaining),
            f"Imported certificate {name} {expires(remaining)}{on(cert.not_after)} "
            "and ACM cannot renew it.",
        )
    if cert.renewal_eligibility == "INELIGIBLE":
        return (
            ROUTE_NOTIFY,
            MANAGED_RENEWAL_INELIGIBLE,
            imported_severity(remaining),
            f"{name} {expires(remaining)}{on(cert.not_after)} and is not eligible "
            "for managed renewal, so ACM will not renew it.",
        )
    return (
        ROUTE_NOTIFY,
        MANAGED_RENEWAL_PENDING,
        Severity.INFORMATIONAL,
        f"{name} {expires(remaining)}{on(cert.not_after)}; ACM will renew it.",
    )


def _available(
    event: AcmEvent, cert: Certificate, owners: Owners, name: str
) -> tuple[str, str, Severity, str]:
    action = event.detail.action
    targets = owners.profile.targets if owners.profile is not None else []
    # cert.exportable: PRIVATE, or public with ACM's Options.Export ENABLED (re-read, not the event)
    if action in ("RENEWAL", "ISSUANCE") and cert.exportable and targets:
        public = "Exportable public certificate " if cert.type == "AMAZON_ISSUED" else ""
        return (
            ROUTE_DISTRIBUTE,
            DISTRIBUTION_PENDING,
            Severity.INFORMATIONAL,
            f"{public}{name} is {'renewed' if action == 'RENEWAL' else 'issued'} and waits to be "
            f"distributed to {len(targets)} target(s) of profile '{owners.profile_name}'.",
        )
    reason = _AVAILABLE_REASONS.get(action or "ISSUANCE", CERTIFICATE_ISSUED)
    verb = {
        CERTIFICATE_ISSUED: "was issued",
        CERTIFICATE_RENEWED: "was renewed",
        CERTIFICATE_IMPORTED: "was imported",
    }[reason]
    return (
        ROUTE_NOTIFY,
        reason,
        Severity.INFORMATIONAL,
        f"{name} {verb} and is valid until {utc_time(cert.not_after)}.",
    )


def _title(kind: EventKind) -> str:
    return {
        EventKind.APPROACHING_EXPIRATION: "Approaching Expiration",
        EventKind.RENEWAL_ACTION_REQUIRED: "Renewal Action Required",
    }.get(kind, kind.value)
