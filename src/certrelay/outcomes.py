"""Emails about how a run ended after triage: the approval rejected by a person or expired with
nobody deciding, the export refused, or the distribution's report.

Input is the state machine's own data (the triage decision, and for a rejection the error the
approval function sent with SendTaskFailure), so the mail says who decided and why. How severe
each outcome is, is the policy's (`policy.OUTCOME_SEVERITIES`).
"""

from __future__ import annotations

import json
from typing import Any

from certrelay.delivery import Delivery, delivery
from certrelay.distribution import summarize, target_label
from certrelay.mail import console_url_for, inline, quoted, sns_message, subject_line
from certrelay.reasons import OUTCOME_SEVERITIES

REJECTED = "rejected"
EXPIRED = "expired"
DISTRIBUTED = "distributed"
EXPORT_FAILED = "export_failed"
KINDS = (REJECTED, EXPIRED, DISTRIBUTED, EXPORT_FAILED)
EVENT_KINDS = {  # the event_kind message attribute, for subscription filter policies
    REJECTED: "ApprovalRejected",
    EXPIRED: "ApprovalExpired",
    DISTRIBUTED: "DistributionReport",
    EXPORT_FAILED: "ExportFailed",
}


def compose_outcome(
    kind: str, decision: dict[str, Any], *, execution_arn: str
) -> list[dict[str, Any]]:
    """One message per recipient: the owners, and for an expiry the approvers too."""
    if kind not in KINDS:
        raise ValueError(f"unknown outcome {kind!r}; expected one of {', '.join(KINDS)}")
    certificate = decision.get("certificate") or {}
    name = inline(certificate.get("domain") or certificate.get("arn") or "the certificate")
    approval = decision.get("approval") or {}
    recipients = list(decision.get("owners") or [])
    if kind == EXPIRED:
        recipients += [*approval.get("approvers", []), *approval.get("escalation", [])]
    if kind == DISTRIBUTED:
        summary = summarize(list((decision.get("distribution") or {}).get("results") or []))
        complete = summary["complete"]
        headline = (
            f"{name} {'distributed to every target' if complete else 'NOT distributed everywhere'}"
        )
        lines = [
            f"The renewed certificate {name} (serial {inline(certificate.get('serial'))}) was "
            "delivered to "
            f"{summary['distributed']} of {summary['distributed'] + summary['failed']} target(s).",
            "",
            *_result_lines(decision),
        ]
        if not complete:
            lines += [
                "",
                "The failed targets keep (or were rolled back to) their previous certificate. "
                "Fix what the line says, then send the ACM Available event again: targets that "
                "already have the certificate are simply written again.",
            ]
        severity = OUTCOME_SEVERITIES[DISTRIBUTED if complete else "distribution_incomplete"].value
    elif kind == EXPORT_FAILED:
        error = decision.get("error") or {}
        headline = f"{name} could not be exported"
        lines = [
            f"certrelay could not export the renewed certificate {name} safely, so nothing was "
            "distributed.",
            "",
            f"Error: {inline(error.get('Error'))}",
            "Cause, as the failing step reported it:",
            *quoted(str(error.get("Cause") or "")),
        ]
        severity = OUTCOME_SEVERITIES[EXPORT_FAILED].value
    elif kind == REJECTED:
        who = _rejection(decision)
        headline = f"distribution of {name} was rejected"
        lines = [
            f"{inline(who.get('approver', 'An approver'))} rejected distributing the renewed "
            f"certificate {name} at {inline(who.get('decided_at', 'an unknown time'))}.",
            "",
            "Reason given, in the approver's words:",
            *quoted(str(who.get("reason") or "")),
            "",
            "Nothing was exported or distributed; the servers and buckets of the profile keep "
            "the certificate they have. If the rejection was a mistake, send the ACM "
            "Available event again to ask for approval once more.",
        ]
        severity = OUTCOME_SEVERITIES[REJECTED].value
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
        severity = OUTCOME_SEVERITIES[EXPIRED].value
    lines += [
        "",
        "Certificate",
        f"  ARN:       {inline(certificate.get('arn'))}",
        f"  Serial:    {inline(certificate.get('serial'))}",
        f"  Not after: {inline(certificate.get('not_after'))}",
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
            event_kind=EVENT_KINDS[kind],
            certificate_arn=str(certificate.get("arn", "")),
        )
        for recipient in dict.fromkeys(recipients)
    ]


def report_delivery(decision: dict[str, Any]) -> Delivery:
    """How the owners' distribution report goes out: held for the digest only when the run is
    routine, i.e. distributed (and verified) to every target, and the profile says
    `notify: digest`. Whoever approved it: a renewal the policy approved asked nobody, and a
    person who approved has already acted (the approval page told them the outcome), so a
    report of success asks nothing of its reader. An incomplete distribution is mailed at once."""
    summary = summarize(list((decision.get("distribution") or {}).get("results") or []))
    complete = bool(summary["complete"])
    severity = OUTCOME_SEVERITIES[DISTRIBUTED if complete else "distribution_incomplete"]
    return delivery(
        notify_mode="digest" if decision.get("notify") == "digest" else "immediate",
        severity=severity.value,
        needs_action=not complete,
    )


def _result_lines(decision: dict[str, Any]) -> list[str]:
    lines = []
    for result in (decision.get("distribution") or {}).get("results") or []:
        label = target_label(result.get("target") or {})
        mark = "ok    " if result.get("status") == "DISTRIBUTED" else "FAILED"
        lines.append(f"  {mark} {inline(label)}: {inline(_detail(result.get('detail')))}")
    return lines


def _detail(detail: Any) -> str:
    """One line about a target: where it landed, or each server's last line, or the error."""
    if isinstance(detail, dict):
        if "report" in detail:
            return "; ".join(
                f"{i.get('instance')} {i.get('status')} {i.get('last_line', '')}".strip()
                for i in detail["report"]
            )
        if "Error" in detail:
            return f"{detail.get('Error')}: {str(detail.get('Cause'))[:300]}"
    return str(detail)[:300]


def _rejection(decision: dict[str, Any]) -> dict[str, Any]:
    """The approval function's SendTaskFailure cause: {approver, reason, decided_at}."""
    cause = (decision.get("error") or {}).get("Cause", "")
    try:
        parsed = json.loads(cause)
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def rejection(decision: dict[str, Any]) -> dict[str, str]:
    """Who rejected, when and why, for the certrelay.rejected event: always the three fields.

    A cause that is not the approval function's JSON (say an operator's send-task-failure by
    hand) still gives an event: the text is kept as the reason, the rest "unknown".
    """
    facts = _rejection(decision)
    reason = facts.get("reason") if facts else (decision.get("error") or {}).get("Cause")
    return {
        "approver": str(facts.get("approver") or "unknown"),
        "decided_at": str(facts.get("decided_at") or "unknown"),
        "reason": str(reason or ""),
    }
