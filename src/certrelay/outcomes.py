"""Emails about how an approval ended: rejected by a person, or expired with nobody deciding.

Input is the state machine's own data (the triage decision, and for a rejection the error the
approval function sent with SendTaskFailure), so the mail says who decided and why.
"""

from __future__ import annotations

import json
from typing import Any

from certrelay.notifications import console_url_for, sns_message, subject_line

REJECTED = "rejected"
EXPIRED = "expired"
KINDS = (REJECTED, EXPIRED)


def compose_outcome(
    kind: str, decision: dict[str, Any], *, execution_arn: str
) -> list[dict[str, Any]]:
    """One message per recipient: the owners, and for an expiry the approvers too."""
    if kind not in KINDS:
        raise ValueError(f"unknown outcome {kind!r}; expected one of {', '.join(KINDS)}")
    certificate = decision.get("certificate") or {}
    name = str(certificate.get("domain") or certificate.get("arn") or "the certificate")
    approval = decision.get("approval") or {}
    recipients = list(decision.get("owners") or [])
    if kind == EXPIRED:
        recipients += [*approval.get("approvers", []), *approval.get("escalation", [])]
    if kind == REJECTED:
        who = _rejection(decision)
        headline = f"distribution of {name} was rejected"
        lines = [
            f"{who.get('approver', 'An approver')} rejected distributing the renewed certificate "
            f"{name} at {who.get('decided_at', 'an unknown time')}.",
            "",
            f"Reason given: {who.get('reason') or '(none)'}",
            "",
            "Nothing was exported or distributed; the servers and buckets of the profile keep "
            "the certificate they have. If the rejection was a mistake, send the ACM "
            "Available event again to ask for approval once more.",
        ]
        severity = "MEDIUM"
    else:
        headline = f"approval for {name} expired"
        lines = [
            f"Nobody approved or rejected distributing the renewed certificate {name} within "
            "the approval window and the escalation window.",
            "",
            "Nothing was exported or distributed. The servers keep the previous certificate, "
            "which still expires on its own date: send the ACM Available event again to ask "
            "once more.",
        ]
        severity = "HIGH"
    lines += [
        "",
        "Certificate",
        f"  ARN:       {certificate.get('arn')}",
        f"  Serial:    {certificate.get('serial')}",
        f"  Not after: {certificate.get('not_after')}",
        "",
        "Execution",
        f"  {console_url_for(execution_arn) or execution_arn}",
    ]
    subject = subject_line(severity, headline)
    return [
        sns_message(
            recipient,
            subject,
            "\n".join(lines),
            severity=severity,
            event_kind=f"Approval{kind.capitalize()}",
            certificate_arn=str(certificate.get("arn", "")),
        )
        for recipient in dict.fromkeys(recipients)
    ]


def _rejection(decision: dict[str, Any]) -> dict[str, Any]:
    """The approval function's SendTaskFailure cause: {approver, reason, decided_at}."""
    cause = (decision.get("error") or {}).get("Cause", "")
    try:
        parsed = json.loads(cause)
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}
