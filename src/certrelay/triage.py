"""Triage one ACM event: parse it, re-read ACM, find the owners, decide, compose the emails.

This is the use case the "Triage Event" Lambda calls; its result is the state machine's
`decision`, so its keys are an API. No private key material is ever read or returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from certrelay import policy
from certrelay.certificates import Certificate, read_certificate
from certrelay.config import Settings
from certrelay.events import AcmEvent, EventKind, check_origin, parse_event
from certrelay.mail import console_url_for
from certrelay.notifications import compose_mail
from certrelay.owners import Owners, resolve_owners
from certrelay.policy import ROUTE_DISTRIBUTE, Decision, decide
from certrelay.profiles import Profile

if TYPE_CHECKING:
    from mypy_boto3_acm import ACMClient

# Event kinds ACM repeats per threshold day: each day is its own event, not a duplicate.
_DAILY_KINDS = frozenset({EventKind.APPROACHING_EXPIRATION, EventKind.RENEWAL_ACTION_REQUIRED})


def triage(
    raw_event: Mapping[str, Any],
    *,
    acm_client: ACMClient,
    settings: Settings,
    profiles: dict[str, Profile],
    execution_arn: str,
    now: datetime,
) -> dict[str, Any]:
    """Return the JSON-able decision for one raw EventBridge event.

    Raises MalformedEvent / UnsupportedEvent for an event it cannot read, and ForeignEvent for
    one about another account, region or partition, before any call to ACM.
    """
    event = parse_event(raw_event)
    check_origin(
        event, account=settings.account, region=settings.region, partition=settings.partition
    )
    certificate = read_certificate(acm_client, event.certificate_arn)
    tags = certificate.tags if certificate is not None else {}
    owners = resolve_owners(tags, profiles, settings.fallback_owner_email)
    decision = decide(
        event, certificate, owners, now=now, thresholds=settings.expiry_threshold_days
    )
    mail = compose_mail(
        event,
        certificate,
        decision,
        owners,
        execution_arn=execution_arn,
        console_url=console_url_for(execution_arn),
    )
    expires_at = now + timedelta(days=settings.event_record_ttl_days)
    return {
        "route": decision.route,
        "reason": decision.reason,
        "reasons": list(decision.reasons),
        "severity": decision.severity.value,
        "summary": decision.summary,
        "event_kind": event.kind.value,
        "certificate": _certificate_view(event, certificate, decision),
        "owners": list(owners.emails),
        "profile": _profile_name(owners),
        "dedupe_key": dedupe_key(event, certificate) + _inconsistent_suffix(decision),
        "record_expires_at": str(int(expires_at.timestamp())),
        "mail": mail,
        "recipients": list(owners.emails) if mail is not None else [],
        "approval": _approval(decision, owners, settings),
        "distribution": _distribution(decision, owners),
        "finding": _finding(decision),
    }


# A problem the security team should see in Security Hub, by the decision's primary reason.
_PROBLEMS = {
    policy.RENEWAL_ACTION_REQUIRED: "RenewalActionRequired",
    policy.CERTIFICATE_EXPIRED: "CertificateExpired",
    policy.CERTIFICATE_REVOKED: "CertificateRevoked",
}
# Reasons that end a certificate's open problems: it was renewed or reissued, or it is gone.
_RESOLVING = {
    policy.CERTIFICATE_RENEWED,
    policy.CERTIFICATE_ISSUED,
    policy.CERTIFICATE_IMPORTED,
    policy.CERTIFICATE_NOT_FOUND,
}


def _finding(decision: Decision) -> dict[str, str] | None:
    """Raise a Security Hub finding, resolve the certificate's open ones, or neither.

    An inconsistent event changes nothing about the certificate's findings: operations hear
    of it, and a forged Revoked event raises no CRITICAL finding.
    """
    if decision.route in (policy.ROUTE_IGNORE, policy.ROUTE_INCONSISTENT):
        return None
    if decision.reason in _PROBLEMS:
        return {"action": "raise", "problem": _PROBLEMS[decision.reason]}
    if policy.OWNER_MISSING in decision.reasons:
        return {"action": "raise", "problem": "OwnerMissing"}
    if decision.reason in _RESOLVING and decision.route != policy.ROUTE_DISTRIBUTE:
        return {"action": "resolve"}
    return None


def _distribution(decision: Decision, owners: Owners) -> dict[str, Any] | None:
    """The profile's target ids and kinds (references: Export and Distribute look each one up
    again in the deployed profiles), how many run at once, and the maintenance window."""
    profile = owners.profile
    if decision.route != ROUTE_DISTRIBUTE or profile is None or owners.profile_name is None:
        return None
    return {
        "targets": [
            {"id": target_id, "kind": target.kind}
            for target_id, target in profile.target_ids(owners.profile_name)
        ],
        "max_concurrency": profile.max_concurrency or DEFAULT_MAX_CONCURRENCY,
        **({"window": profile.window.model_dump(mode="json")} if profile.window else {}),
    }


DEFAULT_MAX_CONCURRENCY = 10


def _approval(decision: Decision, owners: Owners, settings: Settings) -> dict[str, Any] | None:
    """Who approves a distribution, and how long each round waits (None off that route)."""
    profile = owners.profile
    if decision.route != ROUTE_DISTRIBUTE or profile is None:
        return None
    hours = profile.approval_timeout_hours or settings.approval_timeout_hours
    return {
        "mode": profile.approval,
        "approvers": [str(a).lower() for a in profile.approvers],
        "escalation": [str(e).lower() for e in profile.escalation],
        "timeout_seconds": hours * 3600,
        "escalation_timeout_seconds": settings.escalation_timeout_hours * 3600,
        "targets": len(profile.targets),
    }


def dedupe_key(event: AcmEvent, certificate: Certificate | None) -> str:
    """`<arn>#<kind>#<serial|unknown>`, plus `#<DaysToExpiry>` for the daily kinds."""
    serial = certificate.serial if certificate is not None and certificate.serial else "unknown"
    key = f"{event.certificate_arn}#{event.kind.value}#{serial}"
    if event.kind in _DAILY_KINDS:
        days = event.detail.days_to_expiry
        key += f"#{days if days is not None else 'unknown'}"
    return key


def _inconsistent_suffix(decision: Decision) -> str:
    """An inconsistent event is recorded apart: it must not mark the real event as handled
    (a Revoked event that arrived before ACM revoked the certificate, say)."""
    return "#inconsistent" if decision.route == policy.ROUTE_INCONSISTENT else ""


def _certificate_view(
    event: AcmEvent, certificate: Certificate | None, decision: Decision
) -> dict[str, Any]:
    if certificate is None:
        return {
            "arn": event.certificate_arn,
            "domain": event.detail.common_name,
            "type": None,
            "status": None,
            "serial": None,
            "not_after": None,
            "days_to_expiry": None,
            "in_use": None,
        }
    return {
        "arn": certificate.arn,
        "domain": certificate.domain,
        "type": certificate.type,
        "status": certificate.status,
        "serial": certificate.serial,
        "not_after": _iso_z(certificate.not_after),
        "days_to_expiry": decision.days_to_expiry,
        "in_use": certificate.in_use,
    }


def _profile_name(owners: Owners) -> str | None:
    """Only a profile that exists: the distribution steps look it up by this name."""
    return owners.profile_name if owners.profile is not None else None


def _iso_z(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
