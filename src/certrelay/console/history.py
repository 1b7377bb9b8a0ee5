"""What the Step Functions console shows of one execution, from its event history.

`steps` turns a history (GetExecutionHistory's event shapes, local or from AWS) into one `Step`
per state entered; `render` draws them for a terminal (`kept_runs` keeps local runs, which
vanish with their process, for `certrelay history`). Everything passes through `redact` first:
the workflow never puts a secret in state input or output, but AWS records the callback task
token in `TaskScheduled` parameters, and a PEM block must never reach a screen or a file even if
a future change let one through.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from typing import Any

REDACTED = "«redacted»"
_TOKEN_KEYS = {"tasktoken", "token"}
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]+-----(?:.*?-----END [A-Z0-9 ]+-----|.*\Z)", re.DOTALL)
_SCHEDULED = {"TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled"}
_TASK_FAILURES = {
    "TaskFailed",
    "TaskTimedOut",
    "TaskStartFailed",
    "TaskSubmitFailed",
    "LambdaFunctionFailed",
    "LambdaFunctionTimedOut",
    "LambdaFunctionStartFailed",
    "ActivityFailed",
    "ActivityTimedOut",
}
_ITERATION_ENDS = ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted")
_BRANCHING_ENDS = ("ParallelStateSucceeded", "ParallelStateFailed", "ParallelStateAborted")
RED = "\x1b[31m"
RESET = "\x1b[0m"


@dataclass(frozen=True)
class Step:
    """One state entered: what the console shows as a row of the execution's graph inspector.

    `depth` is 0 for top-level states; states inside a Map iteration or Parallel branch have
    the enclosing state's name in `within` (and the Map item's index in `iteration`).
    """

    name: str
    state_type: str
    entered: dt.datetime
    exited: dt.datetime | None
    seconds: float | None
    input: str | None
    output: str | None
    error: str | None
    cause: str | None
    retries: int
    depth: int = 0
    within: str | None = None
    iteration: int | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


# -- redaction -------------------------------------------------------------------------------
def redact(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of `history` with every task token and PEM block replaced by «redacted»."""
    return [_redact_value(event) for event in history]


def _redact_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED if _is_token_key(key) else _redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact_value(item) for item in value]
    if isinstance(value, str):
        return _redact_text(value)
    return value


def _is_token_key(key: Any) -> bool:
    return isinstance(key, str) and key.removesuffix(".$").lower() in _TOKEN_KEYS


def _redact_text(text: str) -> str:
    """Redact inside JSON-encoded strings too (history details hold JSON as text)."""
    if type(text) is str and _nothing_to_redact(text):  # a str subclass (moto's event type
        return text  # enum) comes back as plain str from the whole path: keep that
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            decoded = json.loads(text)
        except ValueError:
            pass
        else:
            cleaned = _redact_value(decoded)
            return text if cleaned == decoded else json.dumps(cleaned, ensure_ascii=False)
    return _PEM.sub(REDACTED, text)


def _nothing_to_redact(text: str) -> bool:
    """True when neither a PEM block nor a token key can be in `text`, however deep its JSON.

    Decoding JSON only unescapes: a key or a PEM header's letters can come out of the decoder
    only as themselves or as a `\\u` escape. So a text with no `\\u` escape, no `-----BEGIN `
    and no `token` (lowered as a key is) holds no token key and no PEM block at any depth,
    and redacting it would return it unchanged; anything else takes the whole path.
    """
    return "\\u" not in text and "-----BEGIN " not in text and "token" not in text.lower()


# -- steps -----------------------------------------------------------------------------------
@dataclass
class _Frame:
    """Where an event sits: top level, or inside a Map iteration / Parallel branch."""

    depth: int
    within: str | None
    iteration: int | None
    owner: int | None  # index of the Map/Parallel step that opened this frame
    parent: _Frame | None


@dataclass
class _Draft:
    """A Step under construction while the history is read."""

    name: str
    state_type: str
    frame: _Frame
    entered: dt.datetime
    input: str | None
    exited: dt.datetime | None = None
    output: str | None = None
    error: str | None = None
    cause: str | None = None
    retries: int = 0
    pending_failures: int = 0

    def step(self) -> Step:
        seconds = (self.exited - self.entered).total_seconds() if self.exited else None
        return Step(
            name=self.name,
            state_type=self.state_type,
            entered=self.entered,
            exited=self.exited,
            seconds=seconds,
            input=self.input,
            output=self.output,
            error=self.error,
            cause=self.cause,
            retries=self.retries,
            depth=self.frame.depth,
            within=self.frame.within,
            iteration=self.frame.iteration,
        )


def steps(history: list[dict[str, Any]]) -> list[Step]:
    """One Step per state entered, in the order entered; the history is redacted first.

    Events are attributed to states through `previousEventId`, as the console does, because
    Map iterations run concurrently and interleave; a history without it falls back to the
    event before. `retries` counts task failures (errors or timeouts) that a Retry answered
    with another attempt in the same state; `error`/`cause` are the failure that ended it.
    """
    drafts: list[_Draft] = []
    owner: dict[int, int | None] = {}  # event id -> index of the step it belongs to
    frames: dict[int, _Frame] = {}
    top = _Frame(0, None, None, None, None)
    last_id: int | None = None
    for event in redact(history):
        event_id = int(event.get("id", (last_id or 0) + 1))
        previous = event.get("previousEventId")
        anchor = previous if previous in frames else last_id
        frame = frames.get(anchor, top) if anchor is not None else top
        current = owner.get(anchor) if anchor is not None else None
        frame, current = _place(event, frame, current, drafts)
        _apply(event, current, drafts)
        owner[event_id], frames[event_id], last_id = current, frame, event_id
    return [draft.step() for draft in drafts]


def _place(
    event: dict[str, Any], frame: _Frame, current: int | None, drafts: list[_Draft]
) -> tuple[_Frame, int | None]:
    """The frame and step an event belongs to, opening a new step or frame where it starts."""
    kind = str(event.get("type", ""))
    if kind == "MapIterationStarted":
        details = event.get("mapIterationStartedEventDetails") or {}
        index = details.get("index")
        name = details.get("name") or (drafts[current].name if current is not None else None)
        return _Frame(frame.depth + 1, name, _int(index), current, frame), current
    if kind.startswith(_ITERATION_ENDS) or kind.startswith(_BRANCHING_ENDS):
        return _close(frame, current)
    if "stateExitedEventDetails" in event:
        # a Parallel state's exit follows its last branch's last event, not its own
        name = event["stateExitedEventDetails"].get("name")
        while current is not None and drafts[current].name != name and frame.parent:
            frame, current = _close(frame, current)
        return frame, current
    if "stateEnteredEventDetails" in event:
        if (
            current is not None
            and drafts[current].state_type == "Parallel"
            and (drafts[current].frame is frame and drafts[current].exited is None)
        ):
            frame = _Frame(frame.depth + 1, drafts[current].name, None, current, frame)
        details = event["stateEnteredEventDetails"]
        drafts.append(
            _Draft(
                name=str(details.get("name", "")),
                state_type=kind.removesuffix("StateEntered"),
                frame=frame,
                entered=timestamp(event.get("timestamp")),
                input=details.get("input"),
            )
        )
        return frame, len(drafts) - 1
    return frame, current


def _close(frame: _Frame, current: int | None) -> tuple[_Frame, int | None]:
    """Leave an iteration or branch: back to the frame and step of its Map or Parallel state."""
    if frame.parent is None:  # not inside one after all: stay where we are
        return frame, current
    return frame.parent, frame.owner


def _apply(event: dict[str, Any], current: int | None, drafts: list[_Draft]) -> None:
    """Record what this event says about its step: exit, output, retry or failure."""
    if current is None:
        return
    draft = drafts[current]
    kind = str(event.get("type", ""))
    if "stateExitedEventDetails" in event:
        draft.exited = timestamp(event.get("timestamp"))
        draft.output = event["stateExitedEventDetails"].get("output")
    elif kind in _SCHEDULED:
        draft.retries += draft.pending_failures
        draft.pending_failures = 0
        draft.error = draft.cause = draft.exited = None
    elif kind in _TASK_FAILURES:
        draft.pending_failures += 1
        _record_failure(event, draft)
    elif kind.endswith(("Failed", "TimedOut", "Aborted")):
        _record_failure(event, draft)


def _record_failure(event: dict[str, Any], draft: _Draft) -> None:
    """Keep the error and cause the event carries; Map and iteration failures carry none."""
    details = next(
        (v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {}
    )
    if "error" not in details and "cause" not in details:
        return
    draft.error = details.get("error") or draft.error or str(event.get("type"))
    draft.cause = details.get("cause") or draft.cause
    draft.exited = draft.exited or timestamp(event.get("timestamp"))


def timestamp(value: Any) -> dt.datetime:
    """boto3 gives datetimes; a saved history gives ISO 8601 text."""
    stamp = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# -- rendering -------------------------------------------------------------------------------
def short(value: str | None, limit: int = 200) -> str | None:
    """One line of compact JSON (or the text itself), cut at `limit` characters with "…"."""
    if value is None:
        return None
    try:
        compact = json.dumps(json.loads(value), separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        compact = " ".join(value.split())
    return compact if len(compact) <= limit else compact[: max(limit - 1, 0)] + "…"


def render(execution_name: str, status: str, steps: list[Step], *, color: bool) -> str:
    """The terminal view: header, the path taken, then one row per state with its timing."""
    start = steps[0].entered if steps else None
    ends = [s.exited or s.entered for s in steps]
    total = f"{(max(ends) - start).total_seconds():.3f} s" if start else "no states"
    failed = status not in ("SUCCEEDED", "RUNNING")
    lines = [
        f"Execution {execution_name}  {_red(status, color) if failed else status}  ({total})",
        "  " + " → ".join(s.name for s in steps if s.depth == 0),
        "",
    ]
    rows = [_row(step, start) for step in steps]
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(4)]
    for step, row in zip(steps, rows, strict=True):
        cells = "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        lines.append(f"  {cells}  {row[4]}".rstrip())
        if step.failed:
            problem = f"  {'':{widths[0]}}  ✗ {step.error}: {short(step.cause) or ''}"
            lines.append(_red(problem, color))
    return "\n".join(lines)


def _row(step: Step, start: dt.datetime | None) -> tuple[str, str, str, str, str]:
    offset = (step.entered - start).total_seconds() if start else 0.0
    duration = f"{step.seconds:.3f}s" if step.seconds is not None else "…"
    where = f"[{step.iteration}] " if step.iteration is not None else ""
    retried = f" ({step.retries} {'retry' if step.retries == 1 else 'retries'})"
    flow = f"{short(step.input, 60) or '-'} → {_output_view(step.input, step.output)}"
    return (
        "  " * step.depth + where + step.name,
        step.state_type,
        f"+{offset:.3f}s",
        duration,
        flow + (retried if step.retries else ""),
    )


def _output_view(before: str | None, after: str | None, limit: int = 80) -> str:
    """The output, or only what the state added or changed when it kept its input (ResultPath).

    Most states pass the whole document along, so the start of every output looks alike; the
    keys that differ are what the state did.
    """
    try:
        old, new = json.loads(before or "null"), json.loads(after or "null")
    except ValueError:
        return short(after, limit) or "-"
    if not (isinstance(old, dict) and isinstance(new, dict) and old.keys() <= new.keys()):
        return short(after, limit) or "-"
    changed = {key: value for key, value in new.items() if old.get(key) != value}
    return "+" + (short(json.dumps(changed), limit - 1) or "") if changed else "(unchanged)"


def _red(text: str, color: bool) -> str:
    return f"{RED}{text}{RESET}" if color else text


def as_json(name: str, arn: str, status: str, steps: list[Step]) -> dict[str, Any]:
    """The `--json` view: the execution and its steps, input and output in full (redacted)."""
    return {
        "name": name,
        "arn": arn,
        "status": status,
        "states": [s.name for s in steps if s.depth == 0],
        "steps": [
            {
                "name": s.name,
                "type": s.state_type,
                "entered": s.entered.isoformat(),
                "exited": s.exited.isoformat() if s.exited else None,
                "seconds": s.seconds,
                "input": s.input,
                "output": s.output,
                "error": s.error,
                "cause": s.cause,
                "retries": s.retries,
                "depth": s.depth,
                "within": s.within,
                "iteration": s.iteration,
            }
            for s in steps
        ],
    }


def use_color(stream: Any) -> bool:
    """Color when writing to a terminal, unless NO_COLOR says otherwise (no-color.org)."""
    return not os.environ.get("NO_COLOR") and bool(getattr(stream, "isatty", lambda: False)())
