"""Plain-text views of local runs: emails as they arrive, histories as the console shows them."""

from __future__ import annotations

import textwrap
from typing import Any

from certrelay.console.history import redact, short
from certrelay.local.results import Execution

_DETAIL_KEYS = (
    "stateEnteredEventDetails",
    "stateExitedEventDetails",
    "taskScheduledEventDetails",
    "taskSucceededEventDetails",
    "taskFailedEventDetails",
    "executionStartedEventDetails",
    "executionSucceededEventDetails",
    "executionFailedEventDetails",
    "mapStateStartedEventDetails",
)


def email(message: dict[str, Any]) -> str:
    """One owner email, framed, the way the recipient would read it."""
    attributes = message.get("attributes", {})
    tags = " · ".join(str(attributes[k]) for k in ("severity", "event_kind") if attributes.get(k))
    lines = [
        f"  ┌─ To: {message.get('recipient') or '(no recipient attribute)'}"
        + (f"   [{tags}]" if tags else ""),
        f"  │ Subject: {message.get('subject')}",
        "  │",
    ]
    for paragraph in str(message.get("body", "")).splitlines():
        indent = paragraph[: len(paragraph) - len(paragraph.lstrip())]
        wrapped = textwrap.wrap(
            paragraph,
            width=100,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        ) or [""]
        lines.extend(f"  │ {line}" for line in wrapped)
    lines.append("  └─")
    return "\n".join(lines)


def history_table(execution: Execution, *, width: int = 60) -> str:
    """The execution's event history: the columns of the console's 'Events' table.

    Read through `history.redact`, as every other view is: the callback's task token, which AWS
    records in its TaskScheduled parameters, never reaches the terminal, however wide the column.
    """
    events = redact(execution.history)
    rows = [("ID", "Type", "Step", "Elapsed (ms)", "Input / output")]
    start = events[0]["timestamp"] if events else None
    steps: dict[int, str] = {}  # event id -> the state it belongs to (Map iterations interleave)
    map_state = ""
    for event in events:
        details: dict[str, Any] = next((event[k] for k in _DETAIL_KEYS if k in event), {})
        if "stateEnteredEventDetails" in event:
            step = details["name"]
            map_state = step if event["type"] == "MapStateEntered" else map_state
        elif event["type"].startswith(("MapState", "MapIteration")):
            step = map_state
        elif event["type"].startswith("Execution"):
            step = ""
        else:
            step = steps.get(event.get("previousEventId", 0), "")
        steps[event["id"]] = "" if "stateExitedEventDetails" in event else step
        elapsed = int((event["timestamp"] - start).total_seconds() * 1000) if start else 0
        rows.append(
            (
                str(event["id"]),
                event["type"],
                step,
                str(elapsed),
                _short(details, width),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        lines.append("  " + "  ".join([*cells, row[4]]).rstrip())
    return "\n".join(lines)


def path(execution: Execution) -> str:
    """`status: State -> State -> ...` on one line."""
    return f"{execution.status}: {' → '.join(execution.states)}"


def _short(details: dict[str, Any], width: int) -> str:
    for key in ("output", "input", "parameters", "cause", "error"):
        if details.get(key):
            return short(str(details[key]), width) or ""
    return ""


def operations(
    findings: list[dict[str, Any]], events: list[dict[str, Any]], metrics: list[dict[str, Any]]
) -> str:
    """What teams and operators see beyond the emails: findings, events out, metrics."""
    lines = [f"Security Hub findings ({len(findings)}):"]
    lines += [
        f"   {f['severity']:<9} {f['status']:<9} {f['problem']:<22} {_certificate_id(f['id'])}"
        for f in findings
    ] or ["   none"]
    lines.append(f"Events out on the default bus ({len(events)}):")
    lines += [
        f"   {e['detail-type']:<34} {(e['detail'].get('certificate') or {}).get('domain')}"
        for e in events
    ] or ["   none"]
    lines.append("Metrics (Powertools, namespace certrelay):")
    lines += [
        f"   {m['name']:<27} {_dimensions(m['dimensions']):<48} {m['value']:g}" for m in metrics
    ] or ["   none"]
    return "\n".join(lines)


def _dimensions(dimensions: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in dimensions.items())


def _certificate_id(finding_id: str) -> str:
    """`arn:…:certificate/<id>/certrelay/<problem>` -> `<id>`."""
    return finding_id.split("/certrelay/", 1)[0].rsplit("/", 1)[-1]
