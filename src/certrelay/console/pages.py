"""The local console's pages: small, script-free HTML under a strict CSP, every value escaped.

What they show comes from `console.Console` (redacted already); these functions only lay it out.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import quote

from certrelay.console import history
from certrelay.distribution_record import CertificateRecord

REFRESH_SECONDS = 3
SHORT = 160  # characters of input / output shown per state

_CSS = (
    "body{margin:0;background:#f6f8fa;color:#1f2328;"
    "font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif}"
    "header{background:#24292f;color:#fff;padding:.7rem 1.5rem}"
    "header a{color:#fff;text-decoration:none;font-weight:600}"
    "main{padding:1rem 1.5rem}h1{font-size:1.25rem;margin:.2rem 0 .8rem}"
    "h2{font-size:1.05rem;margin:1.5rem 0 .5rem}p{margin:.3rem 0}"
    "table{border-collapse:collapse;background:#fff;border:1px solid #d0d7de;width:100%}"
    "th,td{border-bottom:1px solid #d0d7de;padding:.35rem .6rem;text-align:left;"
    "vertical-align:top}th{background:#f6f8fa;font-weight:600}"
    "code,pre{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}"
    "td code{overflow-wrap:anywhere}pre{white-space:pre-wrap;margin:0}.num{white-space:nowrap}"
    ".status{font-weight:600}.SUCCEEDED{color:#1a7f37}.RUNNING{color:#0969da}"
    ".FAILED,.TIMED_OUT,.ABORTED,.error{color:#cf222e}"
    ".diagram{background:#fff;border:1px solid #d0d7de;overflow:auto;max-height:80vh}"
    ".muted{color:#57606a}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}"
    "dt{color:#57606a}dd{margin:0}details{background:#fff;border:1px solid #d0d7de;"
    "padding:.4rem .7rem;margin:.4rem 0}summary{cursor:pointer}"
    "td details{border:0;padding:0;margin:0}"
)
_CSS_HASH = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; form-action 'none'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Listed:
    """One row of the executions list."""

    name: str
    arn: str
    status: str
    started: dt.datetime
    event_kind: str
    certificate: str


def executions(rows: list[Listed], port: int, approvals: str) -> str:
    """The executions list, newest first; it refreshes itself."""
    body = [
        "<h1>Executions</h1>",
        f"<p class='muted'>Send an event: <code>certrelay local send events/available.json "
        f"--cert web-private --port {port}</code> · approval pages on "
        f"<code>{escape(approvals)}</code></p>",
    ]
    if not rows:
        body.append("<p>No executions yet.</p>")
    else:
        body.append(
            "<table><thead><tr><th>Name</th><th>Status</th><th>Started (UTC)</th>"
            "<th>Event</th><th>Certificate</th></tr></thead><tbody>"
        )
        for row in rows:
            body.append(
                f"<tr><td><a href='/executions/{quote(row.name)}'>{escape(row.name)}</a></td>"
                f"<td class='status {escape(row.status)}'>{escape(row.status)}</td>"
                f"<td>{_utc(row.started)}</td><td>{escape(row.event_kind)}</td>"
                f"<td>{escape(row.certificate)}</td></tr>"
            )
        body.append("</tbody></table>")
    return _html("certrelay local console", "\n".join(body), refresh=True)


def execution(
    found: Listed,
    steps: list[history.Step],
    drawing: str,
    *,
    error: str | None,
    cause: str | None,
    emails: list[dict[str, Any]],
    approvals: str,
    record: CertificateRecord | None = None,
) -> str:
    """One execution: its facts, the state machine with its path, its history, its emails, and
    what is on record as distributed for its certificate."""
    path = " → ".join(step.name for step in steps if step.depth == 0)
    body = [
        f"<h1>Execution {escape(found.name)}</h1>",
        "<dl>",
        f"<dt>Status</dt><dd class='status {escape(found.status)}'>{escape(found.status)}</dd>",
        f"<dt>Started</dt><dd>{_utc(found.started)}</dd>",
        f"<dt>Event</dt><dd>{escape(found.event_kind)}</dd>",
        f"<dt>Certificate</dt><dd>{escape(found.certificate)}</dd>",
        f"<dt>Path</dt><dd>{escape(path)}</dd>",
    ]
    if error:
        body.append(
            f"<dt>Error</dt><dd class='error'>{escape(str(error))}: {escape(str(cause or ''))}</dd>"
        )
    body.append(f"</dl><h2>State machine</h2><div class='diagram'>{drawing}</div>")
    body.append(f"<h2>Event history</h2>{_steps_table(steps)}")
    body.append(_emails(emails, approvals))
    body.append(_record(record))
    return _html(f"{found.name} · certrelay", "\n".join(body), refresh=found.status == "RUNNING")


def _html(title: str, body: str, *, refresh: bool) -> str:
    meta = f"<meta http-equiv='refresh' content='{REFRESH_SECONDS}'>" if refresh else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"{meta}<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        "<header><a href='/'>certrelay · local console</a></header>"
        f"<main>{body}</main></body></html>"
    )


def _steps_table(steps: list[history.Step]) -> str:
    if not steps:
        return "<p>No state entered yet.</p>"
    start = steps[0].entered
    rows = [
        "<table class='history'><thead><tr><th>#</th><th>State</th><th>Type</th>"
        "<th>Started</th><th>Duration</th><th>Input</th><th>Output</th></tr></thead><tbody>"
    ]
    for number, step in enumerate(steps, start=1):
        where = f"[{step.iteration}] " if step.iteration is not None else ""
        indent = "&nbsp;" * 4 * step.depth
        duration = f"{step.seconds:.3f} s" if step.seconds is not None else "…"
        retried = f" ({step.retries} retried)" if step.retries else ""
        output = _payload(step.output)
        if step.failed:
            cause = history.short(step.cause, SHORT)
            output += f"<div class='error'>✗ {escape(step.error or '')}"
            output += f": {escape(cause)}</div>" if cause else "</div>"
        rows.append(
            f"<tr data-state='{escape(step.name)}'><td>{number}</td>"
            f"<td>{indent}{escape(where + step.name)}</td><td>{escape(step.state_type)}</td>"
            f"<td class='num'>+{(step.entered - start).total_seconds():.3f} s</td>"
            f"<td class='num'>{duration}{retried}</td>"
            f"<td>{_payload(step.input)}</td>"
            f"<td>{output}</td></tr>"
        )
    rows.append("</tbody></table>")
    return "\n".join(rows)


def _payload(text: str | None) -> str:
    """A state's input or output: one short line; the whole of it, indented, when opened."""
    line = history.short(text, SHORT)
    if not line:
        return ""
    if len(line) < SHORT:  # nothing was cut
        return f"<code>{escape(line)}</code>"
    try:
        whole = json.dumps(json.loads(text or ""), indent=2, ensure_ascii=False)
    except ValueError:
        whole = text or ""
    return (
        f"<details><summary><code>{escape(line)}</code></summary>"
        f"<pre>{escape(whole)}</pre></details>"
    )


def _emails(sent: list[dict[str, Any]], approvals: str) -> str:
    """The emails an execution sent, as their recipients read them; links to the local
    approval pages open them (GET only shows a page: deciding takes its button)."""
    if not sent:
        return ""
    links = re.compile(re.escape(escape(approvals)) + r"/approvals/[A-Za-z0-9._~-]+")
    parts = [f"<section class='emails'><h2>Emails ({len(sent)})</h2>"]
    for message in sent:
        body = links.sub(
            lambda link: f"<a href='{link[0]}'>{link[0]}</a>",
            escape(str(message.get("body") or "")),
        )
        parts.append(
            f"<details><summary>To {escape(str(message.get('recipient') or '?'))}: "
            f"{escape(str(message.get('subject') or ''))}</summary><pre>{body}</pre></details>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def _record(record: CertificateRecord | None) -> str:
    """The certificate's distribution record: the last distribution, then each target."""
    if record is None:  # never distributed (or not by certrelay): nothing to show
        return ""
    shape = record.shape
    facts = [
        ("Serial", record.serial),
        ("Fingerprint (SHA-256)", record.fingerprint),
        ("Distributed", record.distributed_at),
        ("Verified everywhere", "yes" if record.verified else "no"),
        (
            "Last run",
            f"{record.last_outcome or '?'} at {record.last_run_at} "
            f"({'succeeded' if record.last_run_succeeded else 'did not succeed'})",
        ),
    ]
    if shape is not None:
        facts += [
            ("Names", ", ".join(sorted(shape.names))),
            ("Key algorithm", shape.key_algorithm),
            ("Issuer", shape.issuer),
        ]
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
    targets = "".join(
        f"<tr><td>{escape(t.target)}</td><td>{escape(t.kind)}</td><td>{escape(t.serial)}</td>"
        f"<td><code>{escape(t.fingerprint[:16])}</code></td><td>{escape(t.distributed_at)}</td>"
        f"<td class='{'SUCCEEDED' if t.verified else 'FAILED'}'>"
        f"{'verified' if t.verified else escape(t.status.lower() or 'not verified')}</td></tr>"
        for t in record.targets
    )
    return (
        "<section class='record'><h2>Distribution record</h2>"
        f"<dl>{rows}</dl>"
        "<table><thead><tr><th>Target</th><th>Kind</th><th>Serial</th><th>Fingerprint</th>"
        f"<th>Time</th><th>Verified</th></tr></thead><tbody>{targets}</tbody></table></section>"
    )


def not_found(path: str) -> str:
    return _html(
        "Not found · certrelay",
        f"<h1>Not found</h1><p>Nothing at <code>{escape(path)}</code>. "
        "<a href='/'>All executions</a></p>",
        refresh=False,
    )


def _utc(moment: dt.datetime) -> str:
    return escape(moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"))
