"""The owner emails: one mail, published once per owner by the "Notify Owners" step.

Pure composition: what happened, what to do and by when (UTC), the certificate facts, problems
to fix, why this person got the mail, and a link to the execution. Never any key material.
"""

from __future__ import annotations

from certrelay import policy, reasons
from certrelay.certificates import Certificate
from certrelay.events import AcmEvent
from certrelay.mail import subject_line
from certrelay.owners import OWNER_TAG, PROFILE_TAG, Owners
from certrelay.policy import Decision
from certrelay.text import certificate_name, clean, expires, utc_time


def compose_mail(
    event: AcmEvent,
    certificate: Certificate | None,
    decision: Decision,
    owners: Owners,
    *,
    execution_arn: str,
    console_url: str,
) -> dict[str, str] | None:
    """The one mail every owner gets (Notify Owners adds each recipient); None tells no owner.

    The workflow carries it once, not once per owner: a certificate's 100 names in a mail to
    15 owners would otherwise pass Step Functions' 256 KiB payload quota.
    """
    if decision.route in (policy.ROUTE_IGNORE, policy.ROUTE_INCONSISTENT):
        return None
    name = certificate_name(event, certificate)
    return {
        "subject": _subject(decision, name, certificate),
        "message": _body(event, certificate, decision, owners, name, execution_arn, console_url),
        "severity": decision.severity.value,
        "event_kind": event.kind.value,
        "certificate": event.certificate_arn,
        "delivery": decision.delivery,  # Notify Owners' "Deliver Now?" reads it
    }


def _subject(decision: Decision, name: str, cert: Certificate | None) -> str:
    days = decision.days_to_expiry
    headline = {
        reasons.IMPORTED_EXPIRING: f"{name} {expires(days)} (imported)",
        reasons.MANAGED_RENEWAL_INELIGIBLE: f"{name} {expires(days)} (ACM will not renew)",
        reasons.MANAGED_RENEWAL_PENDING: f"{name} {expires(days)} (ACM will renew)",
        reasons.RENEWAL_ACTION_REQUIRED: f"{name} needs action to renew",
        reasons.CERTIFICATE_EXPIRED: f"{name} has expired"
        + (" and is in use" if decision.severity is reasons.Severity.CRITICAL else ""),
        reasons.CERTIFICATE_REVOKED: f"{name} was revoked",
        reasons.CERTIFICATE_ROTATED: f"{name} was rotated",
        reasons.CERTIFICATE_ISSUED: f"{name} was issued",
        reasons.CERTIFICATE_RENEWED: f"{name} was renewed",
        reasons.CERTIFICATE_IMPORTED: f"{name} was imported",
        reasons.DISTRIBUTION_PENDING: f"{name} is ready to distribute",
        reasons.CERTIFICATE_NOT_FOUND: f"certificate not found: {name}",
    }.get(decision.reason, f"{name}: {decision.reason}")
    return subject_line(decision.severity.value, headline)


def _body(
    event: AcmEvent,
    cert: Certificate | None,
    decision: Decision,
    owners: Owners,
    name: str,
    execution_arn: str,
    console_url: str,
) -> str:
    lines = [clean(decision.summary), ""]
    lines += ["What happened", f"  {_what_happened(event)}", ""]
    lines += ["What to do", f"  {_what_to_do(decision, cert, owners, name)}", ""]
    lines += ["Certificate", *_facts(event, cert, decision), ""]
    if owners.problems:
        lines += ["Please fix", *(f"  - {clean(problem)}" for problem in owners.problems), ""]
    lines += ["Why you received this", f"  {_why(owners, cert)}", ""]
    lines += ["Execution", f"  {console_url or execution_arn}", ""]
    lines.append(f"Reasons: {', '.join(decision.reasons)}. Severity: {decision.severity.value}.")
    return "\n".join(lines) + "\n"


def _what_happened(event: AcmEvent) -> str:
    detail = event.detail
    when = utc_time(event.time)
    return clean(
        {
            # not the event's DaysToExpiry: an event can lie, the facts below are ACM's own
            "ApproachingExpiration": f"On {when} ACM sent an expiry reminder for the certificate.",
            "RenewalActionRequired": f"On {when} ACM reported that it cannot renew the "
            f"certificate without help (reason: {detail.renewal_status_reason or 'not given'}).",
            "Expired": f"On {when} ACM reported that the certificate expired.",
            "Available": f"On {when} ACM reported the certificate available "
            f"(action: {detail.action or 'not given'}).",
            "Revoked": f"On {when} ACM reported that the certificate was revoked.",
            "Rotated": f"On {when} ACM reported that the certificate was rotated.",
        }[event.kind.value]
    )


def _what_to_do(decision: Decision, cert: Certificate | None, owners: Owners, name: str) -> str:
    deadline = utc_time(cert.not_after) if cert is not None and cert.not_after else "it expires"
    profile = owners.profile
    text = {
        reasons.IMPORTED_EXPIRING: f"Get a new certificate for {name} from its issuer and "
        f"reimport it into ACM under the same ARN before {deadline}; services using the ARN "
        "then pick it up without changes.",
        reasons.MANAGED_RENEWAL_INELIGIBLE: "ACM will not renew this certificate. Request a "
        f"replacement and move every service that uses it before {deadline}.",
        reasons.MANAGED_RENEWAL_PENDING: "Nothing for now: ACM renews eligible certificates "
        f"before they expire. If it is still not renewed as {deadline} nears, check its "
        "renewal status in the ACM console.",
        reasons.RENEWAL_ACTION_REQUIRED: "Fix what blocks the renewal before "
        f"{deadline}: for DNS validation restore the CNAME validation records, for private "
        "certificates make sure the private CA is ACTIVE and lets ACM issue certificates.",
        reasons.CERTIFICATE_EXPIRED: "Replace the certificate now: anything still presenting "
        "it is failing TLS handshakes.",
        reasons.CERTIFICATE_REVOKED: "Replace the certificate now, remove it from every service "
        "and host that uses it, and find out why it was revoked.",
        reasons.CERTIFICATE_ROTATED: "Nothing, unless you copied the previous certificate "
        "outside ACM or pinned it: update those copies.",
        reasons.DISTRIBUTION_PENDING: "Nothing yet: certrelay will export the certificate and "
        f"distribute it to {len(profile.targets) if profile else 0} target(s) of profile "
        f"'{owners.profile_name}' once its approval rules allow.",
        reasons.CERTIFICATE_NOT_FOUND: "If the certificate was deleted on purpose, nothing. "
        "Otherwise find out who deleted it (CloudTrail DeleteCertificate) and replace it "
        "wherever it was used.",
    }.get(decision.reason, "Nothing is required.")
    return clean(text)


def _facts(event: AcmEvent, cert: Certificate | None, decision: Decision) -> list[str]:
    if cert is None:
        return [
            f"  ARN:         {event.certificate_arn}",
            f"  Domain:      {clean(event.detail.common_name or 'unknown')}",
            "  Status:      not found in ACM",
        ]
    days = decision.days_to_expiry
    rows = [
        ("ARN", cert.arn),
        ("Domain", cert.domain),
        ("Other names", _other_names(cert)),
        ("Type", cert.type),
        ("Status", cert.status),
        ("Serial", cert.serial or "unknown"),
        ("Not after", f"{utc_time(cert.not_after)} ({expires(days)})" if cert.not_after else "?"),
        ("In use", "yes" if cert.in_use else "no"),
    ]
    return [f"  {label + ':':<12} {clean(value)}" for label, value in rows]


def _why(owners: Owners, cert: Certificate | None) -> str:
    if owners.source == "fallback":
        if cert is None:
            return "You are certrelay's fallback owner: ACM no longer has the certificate."
        return (
            f"You are certrelay's fallback owner: the certificate has no valid {OWNER_TAG} tag "
            f"and no profile with owners. Tag it {OWNER_TAG}=<email> so its owners hear next time."
        )
    profile = f"certrelay profile '{clean(owners.profile_name or '')}'"
    return {
        "tag": f"You are listed in the certificate's {OWNER_TAG} tag.",
        "profile": f"You are an owner in {profile}, named by the certificate's {PROFILE_TAG} tag.",
        "tag+profile": f"You are listed in the certificate's {OWNER_TAG} tag or are an owner "
        f"in {profile}.",
    }[owners.source]


# A mail lists this many of the certificate's other names; ACM allows 100 of up to 253 characters,
# which would make the one mail the workflow carries most of its payload.
LISTED_NAMES = 10


def _other_names(cert: Certificate) -> str:
    others = [san for san in cert.sans if san != cert.domain]
    listed = ", ".join(others[:LISTED_NAMES]) or "none"
    more = len(others) - LISTED_NAMES
    return f"{listed} (and {more} more: see ACM)" if more > 0 else listed
