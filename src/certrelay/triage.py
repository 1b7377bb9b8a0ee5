"""Triage one ACM event: parse it, re-read ACM, find the owners, ask the policy for the plan,
and write the plan down with the owners' mail and the idempotency key.

This is the use case the "Triage Event" Lambda calls; its result is the state machine's
`decision`, so its keys are an API. Nothing is decided here: `policy.decide` makes every
decision. No private key material is ever read or returned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from certrelay import policy
from certrelay.approval_policy import LastDistribution
from certrelay.certificates import Certificate, read_certificate
from certrelay.config import Settings
from certrelay.events import AcmEvent, EventKind, check_origin, parse_event
from certrelay.mail import console_url_for
from certrelay.notifications import compose_mail
from certrelay.owners import Owners, resolve_owners
from certrelay.policy import ApprovalPlan, Decision, DistributionPlan, FindingPlan, decide
from certrelay.profiles import Profile
from certrelay.text import iso_z

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
    read_last: Callable[[str], LastDistribution | None] | None = None,
    acm_for: Callable[[str], ACMClient] | None = None,
) -> dict[str, Any]:
    """Return the JSON-able decision for one raw EventBridge event.

    Raises MalformedEvent / UnsupportedEvent for an event it cannot read, and ForeignEvent for
    one about another account, region or partition, before any call to ACM. `read_last` reads
    the certificate's distribution record (certrelay.distribution_record) for the policy.
    `acm_for` gives the ACM client for the certificate's account and Region (a hub's member);
    without it, `acm_client` reads every certificate.
    """
    event = parse_event(raw_event)
    check_origin(event, organization=settings.organization)
    acm = acm_for(event.certificate_arn) if acm_for is not None else acm_client
    certificate = read_certificate(acm, event.certificate_arn)
    tags = certificate.tags if certificate is not None else {}
    owners = resolve_owners(tags, profiles, settings.fallback_owner_email)
    distributes_somewhere = owners.profile is not None and bool(owners.profile.targets)
    last = (
        read_last(certificate.arn)
        if read_last is not None and certificate is not None and distributes_somewhere
        else None
    )
    decision = decide(
        event,
        certificate,
        owners,
        now=now,
        thresholds=settings.expiry_threshold_days,
        approval_timeout_hours=settings.approval_timeout_hours,
        escalation_timeout_hours=settings.escalation_timeout_hours,
        last_distribution=last,
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
        "notify": decision.notify,
        "dedupe_key": dedupe_key(event, certificate) + _inconsistent_suffix(decision),
        "record_expires_at": str(int(expires_at.timestamp())),
        "mail": mail,
        "recipients": list(owners.emails) if mail is not None else [],
        **plan_payload(decision),
    }


def plan_payload(decision: Decision) -> dict[str, Any]:
    """The plan's finding, approval and distribution parts as the state machine reads them."""
    return {
        "approval": _approval(decision.approval),
        "distribution": _distribution(decision.distribution),
        "finding": _finding(decision.finding),
    }


def _finding(plan: FindingPlan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    if plan.action == policy.FINDING_RESOLVE:
        return {"action": plan.action}
    severity = plan.severity.value if plan.severity is not None else None
    return {
        "action": plan.action,
        "problem": plan.problem,
        "severity": severity,
        "required": plan.required,
    }


def _approval(plan: ApprovalPlan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    return {
        "mode": plan.mode,
        "approver": plan.approver,
        "reason": plan.reason,
        "reasons": list(plan.reasons),
        "approvers": list(plan.approvers),
        "escalation": list(plan.escalation),
        "timeout_seconds": plan.timeout_seconds,
        "escalation_timeout_seconds": plan.escalation_timeout_seconds,
        "targets": plan.targets,
    }


def _distribution(plan: DistributionPlan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    return {
        "targets": [{"id": target.id, "kind": target.kind} for target in plan.targets],
        "max_concurrency": plan.max_concurrency,
        **({"window": plan.window.model_dump(mode="json")} if plan.window else {}),
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
        "not_after": iso_z(certificate.not_after) if certificate.not_after else None,
        "days_to_expiry": decision.days_to_expiry,
        "in_use": certificate.in_use,
    }


def _profile_name(owners: Owners) -> str | None:
    """Only a profile that exists: the distribution steps look it up by this name."""
    return owners.profile_name if owners.profile is not None else None
