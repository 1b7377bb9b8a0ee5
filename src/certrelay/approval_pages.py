"""What an approver reads: the email with their link, and the pages behind the link.

The pages are small, script-free HTML under a strict CSP, every dynamic value escaped: one
stylesheet allowed by its hash, one form whose two buttons POST to the page's own URL. The 404
page is a constant so every unknown, forged or malformed link gets the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from html import escape

from certrelay.approval_policy import MEANINGS, POLICY_HUMAN
from certrelay.mail import inline, subject_line
from certrelay.text import utc_time

MAX_REASON_BYTES = 1024

_CSS = (
    "body{margin:0;background:#f3f4f6;color:#1f2328;"
    'font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}'
    "main{max-width:42rem;margin:2.5rem auto;padding:0 1rem}"
    ".card{background:#fff;border:1px solid #d0d7de;border-radius:12px;padding:1.5rem 1.75rem;"
    "box-shadow:0 1px 3px rgba(0,0,0,.06)}"
    "h1{font-size:1.35rem;margin:0 0 .5rem}"
    "p{margin:0 0 1rem}"
    ".lead{color:#57606a}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1rem;margin:0 0 1.25rem}"
    "dt{color:#57606a}dd{margin:0;overflow-wrap:anywhere}"
    "code{font:.9em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}"
    "label{display:block;font-weight:600;margin-bottom:.35rem}"
    "textarea{box-sizing:border-box;width:100%;min-height:5rem;padding:.5rem;font:inherit;"
    "border:1px solid #d0d7de;border-radius:8px}"
    ".actions{display:flex;gap:.75rem;margin-top:1rem}"
    "button{flex:1;padding:.7rem 1rem;border-radius:8px;font:inherit;font-weight:600;"
    "cursor:pointer;border:1px solid transparent}"
    ".approve{background:#1f883d;color:#fff}"
    ".reject{background:#fff;color:#cf222e;border-color:#cf222e}"
    ".note{font-size:.875rem;color:#57606a;margin:1rem 0 0}"
    ".foot{text-align:center;font-size:.8rem;color:#8c959f;margin-top:1rem}"
    "table{width:100%;border-collapse:collapse;margin:0 0 1rem}"
    "th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid #d0d7de;"
    "vertical-align:top;overflow-wrap:anywhere}"
    "th{color:#57606a;font-weight:600}"
    "td input{width:1.1rem;height:1.1rem}"
    ".ok{color:#1f883d;font-weight:600}.no{color:#cf222e;font-weight:600}"
)
_CSS_HASH = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()

HEADERS: dict[str, str] = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
    "Strict-Transport-Security": "max-age=31536000",
}


@dataclass(frozen=True)
class Facts:
    """What the confirmation page shows about one approval link."""

    approval_id: str
    approver: str
    round: str
    domain: str
    arn: str
    serial: str
    not_after: str
    profile: str
    targets: int | None
    summary: str
    deadline: datetime
    execution: str
    console_url: str
    signed_in: str | None = None
    others: int = 0  # the approver's other pending renewals (the batch page lists them all)


@dataclass(frozen=True)
class BatchRow:
    """One pending renewal on the batch page: its reference (the record digest) and facts."""

    ref: str
    domain: str
    serial: str
    not_after: str
    profile: str
    targets: int | None
    round: str
    deadline: datetime
    this_link: bool = False


@dataclass(frozen=True)
class BatchResult:
    """What happened to one selected item: a short word, whether it was decided, and why."""

    ref: str
    domain: str
    result: str
    decided: bool
    detail: str


@dataclass(frozen=True)
class Outcome:
    """A recorded decision, as the thank-you and already-decided pages show it."""

    decision: str
    approver: str
    decided_at: str
    reason: str


@dataclass(frozen=True)
class Mail:
    """What the emails of one approval round say, whoever receives them."""

    round: str
    domain: str
    arn: str
    serial: str
    not_after: str
    profile: str
    targets: int | None
    deadline: datetime
    execution: str
    reasons: tuple[str, ...] = ()  # approval_policy's reason codes: why a person is asked


def email(mail: Mail, *, link: str, escalation_contact: bool) -> tuple[str, str]:
    """The subject and plain-text body: what, why, the link, the deadline, the execution."""
    escalated = mail.round == "escalation"
    subject = subject_line(
        f"Approval {'escalated' if escalated else 'needed'}", f"distribute {mail.domain}"
    )
    targets = f"{mail.targets} target(s)" if mail.targets is not None else "its targets"
    role = "an escalation contact" if escalation_contact else "an approver"
    why = [
        f"  Profile '{_clean(mail.profile)}' distributes this certificate to {targets} and",
        "  asks a person to approve first. You are " + role + " for it.",
    ]
    why += [
        f"  {_clean(code)}: {MEANINGS[code]}."
        for code in mail.reasons
        if code in MEANINGS and code != POLICY_HUMAN
    ]
    if escalated:
        why.append("  Nobody decided before the first deadline, so the request was escalated.")
    lines = [
        f"A renewed certificate for {_clean(mail.domain)} is ready to distribute and waits for",
        "your approval.",
        "",
        "What was renewed",
        f"  Domain:      {_clean(mail.domain)}",
        f"  ARN:         {_clean(mail.arn)}",
        f"  Serial:      {_clean(mail.serial)}",
        f"  Not after:   {_clean(mail.not_after)}",
        "",
        "Why you are asked",
        *why,
        "",
        "Decide",
        f"  {link}",
        "  The link opens a confirmation page; nothing happens until you press Approve or",
        "  Reject there. The link is yours alone: please do not forward it.",
        f"  Decide by {utc_time(mail.deadline)}; after that the link expires.",
        "",
        "Execution",
        f"  {_clean(mail.execution)}",
    ]
    return subject, "\n".join(lines) + "\n"


def confirmation(facts: Facts, csrf: str) -> str:
    """The page a link opens: the facts, a reason box and the two buttons. Changes nothing."""
    targets = f"{facts.targets} target(s)" if facts.targets is not None else "its targets"
    why = (
        f"Profile <strong>{_e(facts.profile)}</strong> distributes this certificate to "
        f"{_e(targets)} and asks a person to approve first."
    )
    if facts.round == "escalation":
        why += " Nobody decided before the first deadline, so the request was escalated."
    rows = [
        ("Domain", _e(facts.domain)),
        ("Certificate", f"<code>{_e(facts.arn)}</code>"),
        ("Serial", f"<code>{_e(facts.serial)}</code>"),
        ("Not after", _e(facts.not_after)),
        ("Asked", _e(facts.approver)),
        ("Decide by", _e(utc_time(facts.deadline))),
        ("Execution", _link(facts.console_url, facts.execution)),
    ]
    if facts.signed_in is not None:
        rows.append(("Signed in as", _e(facts.signed_in)))
    others = ""
    if facts.others:
        others = (
            f'<p class="note">You have {facts.others} other pending renewal(s). '
            f'<a href="{_e(facts.approval_id)}/batch">Review them all on one page</a>.</p>'
        )
    return _page(
        "Approve certificate distribution?",
        f"<h1>Distribute the renewed certificate for {_e(facts.domain)}?</h1>"
        f'<p class="lead">{why}</p>'
        f"<p>{_e(facts.summary)}</p>"
        f"{_facts(rows)}"
        f'<form method="post" action="{_e(facts.approval_id)}">'
        f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
        '<label for="reason">Reason (optional)</label>'
        f'<textarea id="reason" name="reason" maxlength="{MAX_REASON_BYTES}"></textarea>'
        '<div class="actions">'
        '<button class="approve" type="submit" name="decision" value="approve">Approve</button>'
        '<button class="reject" type="submit" name="decision" value="reject">Reject</button>'
        "</div></form>"
        '<p class="note">Nothing happens until you press a button. Your decision, the time, '
        "your IP address and browser are recorded.</p>" + others,
    )


def batch(approver: str, rows: list[BatchRow], csrf: str, *, signed_in: str | None) -> str:
    """The batch page: every pending renewal of one approver, a checkbox each, one decision for
    the selection. Changes nothing; nothing is selected until the approver ticks it."""
    if not rows:
        return _page(
            "Nothing waits for you",
            "<h1>No renewals wait for your approval</h1><p>Every request sent to "
            f"{_e(approver)} has been decided or has expired. Nothing was changed.</p>",
        )
    body = "".join(
        "<tr>"
        f'<td><input type="checkbox" id="i{n}" name="item" value="{_e(row.ref)}"></td>'
        f'<td><label for="i{n}">{_e(row.domain)}</label>'
        f"{' <em>(this link)</em>' if row.this_link else ''}"
        f"{' <em>(escalated)</em>' if row.round == 'escalation' else ''}</td>"
        f"<td><code>{_e(row.serial)}</code></td>"
        f"<td>{_e(row.profile)}, "
        f"{_e(f'{row.targets} target(s)' if row.targets is not None else 'its targets')}</td>"
        f"<td>{_e(utc_time(row.deadline))}</td>"
        "</tr>"
        for n, row in enumerate(rows)
    )
    who = f"Signed in as {_e(signed_in)}. " if signed_in is not None else ""
    return _page(
        "Pending renewals",
        f"<h1>{len(rows)} renewal(s) wait for your approval</h1>"
        f'<p class="lead">{who}Requests sent to {_e(approver)}. Tick the ones to decide, then '
        "approve or reject them together; each is recorded and answered on its own.</p>"
        '<form method="post" action="batch">'
        f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
        "<table><thead><tr><th></th><th>Domain</th><th>Serial</th><th>Profile</th>"
        f"<th>Decide by</th></tr></thead><tbody>{body}</tbody></table>"
        '<label for="reason">Reason (optional, for every ticked renewal)</label>'
        f'<textarea id="reason" name="reason" maxlength="{MAX_REASON_BYTES}"></textarea>'
        '<div class="actions">'
        '<button class="approve" type="submit" name="decision" value="approve">'
        "Approve selected</button>"
        '<button class="reject" type="submit" name="decision" value="reject">'
        "Reject selected</button>"
        "</div></form>"
        '<p class="note">Nothing happens until you press a button. Each decision, the time, '
        "your IP address and browser are recorded.</p>",
    )


def batch_results(results: list[BatchResult]) -> str:
    """After a batch POST: what happened to each selected renewal."""
    decided = sum(result.decided for result in results)
    body = "".join(
        "<tr>"
        f"<td>{_e(result.domain)}</td>"
        f'<td class="{"ok" if result.decided else "no"}">{_e(result.result)}</td>'
        f"<td>{_e(result.detail)}</td>"
        "</tr>"
        for result in results
    )
    return _page(
        "Decisions recorded",
        f"<h1>{decided} of {len(results)} renewal(s) decided</h1>"
        "<p>Each renewal was decided on its own; one that could not be decided did not stop the "
        "others.</p>"
        "<table><thead><tr><th>Domain</th><th>Result</th><th>Details</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
        '<p class="note"><a href="batch">Back to your pending renewals</a></p>',
    )


def thanks(outcome: Outcome) -> str:
    """After a decision reached the workflow."""
    verb = "approved" if outcome.decision == "approve" else "rejected"
    then = (
        "The renewed certificate will now be distributed."
        if outcome.decision == "approve"
        else "The certificate will not be distributed; the owners are told."
    )
    return _page(
        "Thank you - recorded",
        f"<h1>Thank you &mdash; recorded</h1><p>You {verb} the distribution. {then}</p>"
        + _outcome(outcome),
    )


def already_decided(outcome: Outcome) -> str:
    """409: somebody (maybe you) decided already; shows who, what, when and why."""
    verb = "approved" if outcome.decision == "approve" else "rejected"
    return _page(
        "Already decided",
        "<h1>Already decided</h1>"
        f"<p>{_e(outcome.approver)} {verb} this distribution. Nothing was changed.</p>"
        + _outcome(outcome),
    )


def gone(*, recorded: bool = False) -> str:
    """410: past the deadline, or the workflow no longer waits for this decision."""
    text = (
        "Your decision was recorded, but the workflow had already stopped waiting for it, "
        "so it changed nothing."
        if recorded
        else "The deadline has passed or the workflow no longer waits for a decision. "
        "Nothing was changed."
    )
    return _page("Link expired", f"<h1>This approval link has expired</h1><p>{text}</p>")


def forbidden(signed_in: str | None = None, *, no_longer: bool = False) -> str:
    """403: the form did not come from the page, the signed-in person is not the approver, or
    the certificate's profile no longer names the approver."""
    if no_longer:
        text = (
            "The certificate's profile no longer names you as an approver, so you cannot "
            "decide this request. Nothing was changed; the refusal was recorded."
        )
    elif signed_in is not None:
        text = (
            f"You are signed in as {_e(signed_in or 'nobody')}, but this link was sent to "
            "another approver. Sign in with the address the email went to."
        )
    else:
        text = (
            "The decision did not come from the confirmation page, or the page is stale. "
            "Open the link from the email again and use its buttons. Nothing was changed."
        )
    return _page("Not allowed", f"<h1>Not allowed</h1><p>{text}</p>")


def signing_in() -> str:
    """The body of a 302 on the way to or back from the SSO issuer."""
    return _page("Signing in", "<h1>Signing in</h1><p>Taking you to sign in and back.</p>")


def sign_in_failed(why: str) -> str:
    """400/403: the SSO sign-in did not complete; nothing was changed."""
    return _page(
        "Sign-in failed",
        f"<h1>Sign-in failed</h1><p>{_e(why[:200])}. Nothing was changed. Open the link from "
        "the email again to sign in once more.</p>",
    )


def bad_batch(limit: int) -> str:
    """400: the batch form was not 1..limit distinct renewals, one decision and a short reason."""
    return _page(
        "Incomplete form",
        f"<h1>The form was incomplete</h1><p>Tick between 1 and {limit} renewals, then choose "
        f"Approve or Reject; the reason may be at most {MAX_REASON_BYTES} bytes. Nothing was "
        "changed.</p>",
    )


def bad_request() -> str:
    """400: the form was not one decision with a reason of at most MAX_REASON_BYTES."""
    return _page(
        "Incomplete form",
        "<h1>The form was incomplete</h1><p>Choose Approve or Reject; the reason may be at "
        f"most {MAX_REASON_BYTES} bytes. Nothing was changed.</p>",
    )


def unavailable() -> str:
    """503: something failed on our side; nothing was decided."""
    return _page(
        "Try again",
        "<h1>Please try again</h1><p>Something went wrong on our side and nothing was "
        "decided. Try again in a minute.</p>",
    )


def _outcome(outcome: Outcome) -> str:
    return _facts(
        [
            ("Decision", _e(outcome.decision)),
            ("By", _e(outcome.approver)),
            ("At", _e(outcome.decided_at)),
            ("Reason", _e(outcome.reason) or "<em>none given</em>"),
        ]
    )


def _facts(rows: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{label}</dt><dd>{html}</dd>" for label, html in rows) + "</dl>"


def _link(url: str, text: str) -> str:
    if not url.startswith("https://"):
        return f"<code>{_e(text)}</code>"
    return f'<a href="{_e(url)}" rel="noreferrer noopener">{_e(text)}</a>'


def _page(title: str, content: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{_e(title)} - certrelay</title><style>{_CSS}</style></head>"
        f'<body><main><div class="card">{content}</div>'
        '<p class="foot">certrelay certificate approvals</p></main></body></html>\n'
    )


def _clean(text: str) -> str:
    """A value on one of the email's own lines: no control characters (newlines too), capped."""
    return inline(text)


def _e(text: object) -> str:
    return escape(str(text), quote=True)


# 404 for every unknown, forged, short or long link: one constant, so the bytes are identical.
NOT_FOUND = _page(
    "Link not found",
    "<h1>This approval link is not valid</h1><p>Open the whole link from the email. If it "
    "still fails, the request may have been withdrawn; ask for a new one.</p>",
)
