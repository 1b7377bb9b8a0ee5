"""Triage policy (DESIGN.md §4): what an ACM event means once ACM itself has been re-read.

`decide` is pure: it takes the parsed event, what ACM says now (or None), the resolved owners and
`now`, and returns a route, reason codes, a severity and one human sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from certrelay.certificates import Certificate
from certrelay.events import AcmEvent, EventKind
from certrelay.owners import Owners
from certrelay.reminders import days_until

# Routes: the "Route Event?" choice in the state machine branches on these.
ROUTE_IGNORE = "ignore"  # nothing to tell anyone
ROUTE_NOTIFY = "notify"  # tell the owners
ROUTE_ATTENTION = "attention"  # raise a finding and alert the owners
ROUTE_DISTRIBUTE = "distribute"  # ask for approval, then export and distribute
ROUTE_INCONSISTENT = "inconsistent"  # the event contradicts ACM: tell operations, not owners


class Severity(StrEnum):
    """How urgent the decision is; compare with `rank`, not with string order."""

    INFORMATIONAL = "INFORMATIONAL"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


# Reason codes: the first one a decision carries is its primary reason.
NOT_A_THRESHOLD_DAY = "NotAThresholdDay"  # daily expiry reminder on a day we do not act on
ALREADY_RENEWED = "AlreadyRenewed"  # ACM's NotAfter is past the expiry the event warns about
IMPORTED_EXPIRING = "ImportedExpiring"  # imported certificate nears expiry; ACM cannot renew it
MANAGED_RENEWAL_PENDING = "ManagedRenewalPending"  # eligible ACM certificate; ACM will renew it
MANAGED_RENEWAL_INELIGIBLE = "ManagedRenewalIneligible"  # ACM-issued but ACM will not renew it
RENEWAL_ACTION_REQUIRED = "RenewalActionRequired"  # managed renewal is stuck until someone acts
CERTIFICATE_EXPIRED = "CertificateExpired"  # the certificate is past its NotAfter
CERTIFICATE_REVOKED = "CertificateRevoked"  # the certificate was revoked
CERTIFICATE_ROTATED = "CertificateRotated"  # ACM rotated the certificate
CERTIFICATE_ISSUED = "CertificateIssued"  # a new certificate was issued (Available, ISSUANCE)
CERTIFICATE_RENEWED = "CertificateRenewed"  # ACM renewed the certificate (Available, RENEWAL)
CERTIFICATE_IMPORTED = "CertificateImported"  # a certificate was (re)imported (IMPORT, REIMPORT)
DISTRIBUTION_PENDING = "DistributionPending"  # renewed exportable certificate has targets to feed
CERTIFICATE_NOT_FOUND = "CertificateNotFound"  # ACM no longer has the certificate
OWNER_MISSING = "OwnerMissing"  # no owner tag or profile owners: the fallback owner was told
PROFILE_UNKNOWN = "ProfileUnknown"  # the certrelay:profile tag names no configured profile
EVENT_INCONSISTENT = "EventInconsistent"  # the event's kind contradicts what ACM says now

# ACM's NotAfter may differ from the event's idea of expiry by rounding; beyond this it moved.
RENEWED_TOLERANCE = timedelta(days=1)

_AVAILABLE_REASONS = {
    "ISSUANCE": CERTIFICATE_ISSUED,
    "RENEWAL": CERTIFICATE_RENEWED,
    "IMPORT": CERTIFICATE_IMPORTED,
    "REIMPORT": CERTIFICATE_IMPORTED,
}


@dataclass(frozen=True)
class Decision:
    """What to do about one event, and why."""

    route: str
    reason: str
    reasons: tuple[str, ...]
    severity: Severity
    summary: str
    days_to_expiry: int | None


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
) -> Decision:
    """Route one ACM event. ACM's current view of the certificate wins over the event's."""
    days = (
        days_until(certificate.not_after, now)
        if certificate is not None and certificate.not_after
        else None
    )
    name = _name(event, certificate)
    route, reason, severity, summary = _judge(
        event, certificate, owners, days, name, thresholds, now
    )
    reasons = [reason]
    if route not in (ROUTE_IGNORE, ROUTE_INCONSISTENT) and certificate is not None:
        if owners.fallback:
            reasons.append(OWNER_MISSING)
        if owners.profile_unknown:
            reasons.append(PROFILE_UNKNOWN)
    return Decision(route, reason, tuple(reasons), severity, summary, days)


def _judge(
    event: AcmEvent,
    cert: Certificate | None,
    owners: Owners,
    days: int | None,
    name: str,
    thresholds: frozenset[int],
    now: datetime,
) -> tuple[str, str, Severity, str]:
    detail = event.detail
    kind = event.kind
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
    if kind is EventKind.RENEWAL_ACTION_REQUIRED:
        why = f" ({detail.renewal_status_reason})" if detail.renewal_status_reason else ""
        return (
            ROUTE_ATTENTION,
            RENEWAL_ACTION_REQUIRED,
            Severity.HIGH,
            f"ACM cannot renew {name} until someone acts{why}; it {_expires(days)}.",
        )
    if kind is EventKind.EXPIRED:
        in_use = cert.in_use or bool(detail.in_use)
        return (
            ROUTE_ATTENTION,
            CERTIFICATE_EXPIRED,
            Severity.CRITICAL if in_use else Severity.HIGH,
            f"{name} has expired{_on(cert.not_after)} and is "
            f"{'still in use' if in_use else 'not in use'}.",
        )
    if kind is EventKind.REVOKED:
        return (
            ROUTE_ATTENTION,
            CERTIFICATE_REVOKED,
            Severity.CRITICAL,
            f"{name} has been revoked.",
        )
    if kind is EventKind.ROTATED:
        return (
            ROUTE_NOTIFY,
            CERTIFICATE_ROTATED,
            Severity.INFORMATIONAL,
            f"ACM rotated {name}; it is now valid until {_date(cert.not_after)}.",
        )
    return _available(event, cert, owners, name)


# What each event kind claims, and what ACM's DescribeCertificate answer now contradicts it.
# "Past" is NotAfter before now (or status EXPIRED); "revoked" is status REVOKED or a
# RevokedAt date; "never issued" is PENDING_VALIDATION, VALIDATION_TIMED_OUT or FAILED.
#
# | event kind                   | contradicted when ACM says now                          |
# |------------------------------|---------------------------------------------------------|
# | any, with CertificateType    | another Type                                            |
# | any                          | never issued (no certificate to speak of)               |
# | Approaching Expiration       | past (a NotAfter moved further is AlreadyRenewed: a     |
# |                              | stale reminder, not a contradiction)                    |
# | Renewal Action Required      | IMPORTED (ACM never renews it), revoked, past           |
# | Expired                      | NotAfter still ahead                                    |
# | Revoked                      | not revoked: no REVOKED status and no RevokedAt         |
# | Rotated                      | revoked, past                                           |
# | Available ISSUANCE / RENEWAL | revoked, past, status not ISSUED, IMPORTED              |
# | Available IMPORT / REIMPORT  | revoked, past, status not ISSUED, issued by ACM         |
#
# A certificate ACM no longer has is not a contradiction: it is CertificateNotFound.
NEVER_ISSUED = frozenset({"PENDING_VALIDATION", "VALIDATION_TIMED_OUT", "FAILED"})


def contradicts(event: AcmEvent, cert: Certificate, *, now: datetime) -> str | None:
    """The way the event's kind contradicts ACM's current view of `cert`, or None."""
    detail = event.detail
    claimed_type = detail.certificate_type
    if claimed_type is not None and claimed_type != cert.type:
        return f"the event says type {_quoted(claimed_type)}, ACM says {cert.type}"
    if cert.status in NEVER_ISSUED:
        return f"ACM never issued it (status {cert.status})"
    revoked = cert.status == "REVOKED" or cert.revoked_at is not None
    past = cert.status == "EXPIRED" or (cert.not_after is not None and cert.not_after < now)
    expired_on = f"ACM says it expired{_on(cert.not_after)}"
    revoked_on = f"ACM says it was revoked{_on(cert.revoked_at)}"
    kind = event.kind
    if kind is EventKind.APPROACHING_EXPIRATION:
        return expired_on if past else None
    if kind is EventKind.RENEWAL_ACTION_REQUIRED:
        if cert.type == "IMPORTED":
            return "ACM never renews an imported certificate, so no renewal can need action"
        return revoked_on if revoked else expired_on if past else None
    if kind is EventKind.EXPIRED:
        if past:
            return None
        return f"ACM says it is valid until {_date(cert.not_after)} (status {cert.status})"
    if kind is EventKind.REVOKED:
        if revoked:
            return None
        return f"ACM says status {cert.status} with no revocation date"
    if revoked:
        return revoked_on
    if past:
        return expired_on
    if kind is EventKind.ROTATED:
        return None
    if cert.status != "ISSUED":
        return f"ACM says status {cert.status}, not ISSUED"
    action = detail.action
    if action in ("IMPORT", "REIMPORT") and cert.type != "IMPORTED":
        return f"the event says {action}, but ACM issued it ({cert.type})"
    if action in ("ISSUANCE", "RENEWAL") and cert.type == "IMPORTED":
        return f"the event says {action}, but the certificate was imported and ACM never issues it"
    return None


def _quoted(text: str, limit: int = 40) -> str:
    """An event-supplied string, quoted on one line: it reaches an operator's email."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


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
            f"{name} was already renewed: ACM's copy is valid until {_date(cert.not_after)}, "
            f"after the {_date(warned_expiry)} the event warned about.",
        )
    remaining = days if days is not None else (detail.days_to_expiry or 0)
    if cert.type == "IMPORTED":
        return (
            ROUTE_NOTIFY,
            IMPORTED_EXPIRING,
            imported_severity(remaining),
            f"Imported certificate {name} {_expires(remaining)}{_on(cert.not_after)} "
            "and ACM cannot renew it.",
        )
    if cert.renewal_eligibility == "INELIGIBLE":
        return (
            ROUTE_NOTIFY,
            MANAGED_RENEWAL_INELIGIBLE,
            imported_severity(remaining),
            f"{name} {_expires(remaining)}{_on(cert.not_after)} and is not eligible "
            "for managed renewal, so ACM will not renew it.",
        )
    return (
        ROUTE_NOTIFY,
        MANAGED_RENEWAL_PENDING,
        Severity.INFORMATIONAL,
        f"{name} {_expires(remaining)}{_on(cert.not_after)}; ACM will renew it.",
    )


def _available(
    event: AcmEvent, cert: Certificate, owners: Owners, name: str
) -> tuple[str, str, Severity, str]:
    action = event.detail.action
    targets = owners.profile.targets if owners.profile is not None else []
    if action in ("RENEWAL", "ISSUANCE") and cert.exportable and targets:
        return (
            ROUTE_DISTRIBUTE,
            DISTRIBUTION_PENDING,
            Severity.INFORMATIONAL,
            f"{name} is {'renewed' if action == 'RENEWAL' else 'issued'} and waits to be "
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
        f"{name} {verb} and is valid until {_date(cert.not_after)}.",
    )


def _name(event: AcmEvent, cert: Certificate | None) -> str:
    if cert is not None and cert.domain:
        return cert.domain
    return event.detail.common_name or event.certificate_arn


def _title(kind: EventKind) -> str:
    return {
        EventKind.APPROACHING_EXPIRATION: "Approaching Expiration",
        EventKind.RENEWAL_ACTION_REQUIRED: "Renewal Action Required",
    }.get(kind, kind.value)


def _expires(days: int | None) -> str:
    """'expires in 7 days', 'expires today', 'expired 2 days ago'."""
    if days is None:
        return "expires at an unknown date"
    if days < 0:
        return f"expired {_days(-days)} ago"
    return "expires today" if days == 0 else f"expires in {_days(days)}"


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


def _date(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "an unknown date"


def _on(moment: datetime | None) -> str:
    return f" ({_date(moment)})" if moment is not None else ""
