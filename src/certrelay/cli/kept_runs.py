"""Local runs, kept: local executions vanish with their process, so `certrelay local run`, the
demo and `local up` save each one (redacted) for `certrelay history` to show afterwards.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from certrelay.console.history import redact, timestamp

KEEP = 200  # saved executions kept; older ones are pruned on save
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


class Recorded(Protocol):
    """What `save` needs of an execution (the engine's `Execution` has it)."""

    name: str
    arn: str
    status: str
    history: list[dict[str, Any]]


@dataclass(frozen=True)
class Saved:
    """One execution as `save` left it: its history is already redacted."""

    name: str
    arn: str
    status: str
    started: dt.datetime | None
    history: list[dict[str, Any]]


# -- local store -----------------------------------------------------------------------------
def state_directory() -> Path:
    """certrelay's local state: $CERTRELAY_STATE_DIR, else $XDG_STATE_HOME/certrelay, else
    ~/.local/state/certrelay (kept runs under executions/, a running `local up`'s address)."""
    if os.environ.get("CERTRELAY_STATE_DIR"):
        return Path(os.environ["CERTRELAY_STATE_DIR"])
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "certrelay"


def default_directory() -> Path:
    """Where local runs are kept for `certrelay history`."""
    return state_directory() / "executions"


def save(execution: Recorded, directory: Path | None = None) -> Path:
    """Write the execution, redacted, to `<directory>/<name>.json`; keep the newest KEEP."""
    (path,) = _save_all([execution], directory)
    return path


def keep(executions: Iterable[Recorded], directory: Path | None = None) -> str | None:
    """Save each execution for `certrelay history`; say why not, rather than fail the run."""
    try:
        _save_all(list(executions), directory)
    except OSError as error:
        return f"this run is not kept for `certrelay history`: {error}"
    return None


def _save_all(executions: list[Recorded], directory: Path | None) -> list[Path]:
    """Save the executions in order (the last is the latest), then prune to the newest KEEP;
    the folder is listed once for all of them (a listing stats every kept file)."""
    folder = directory or default_directory()
    folder.mkdir(parents=True, exist_ok=True)
    existing = _newest_first(folder)
    newest = existing[0].stat().st_mtime_ns if existing else 0
    saved: list[Path] = []
    for execution in executions:
        history = redact(execution.history)
        record = {
            "name": execution.name,
            "arn": execution.arn,
            "status": execution.status,
            "started": history[0].get("timestamp") if history else None,
            "history": history,
        }
        path = folder / f"{_SAFE_NAME.sub('_', execution.name)}.json"
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(record, default=_iso, ensure_ascii=False), encoding="utf-8")
        temporary.replace(path)
        # File times are coarse (a few ms); the demo saves several at once, and "latest" must
        # be the last one saved, so each save is stamped strictly after the newest before it.
        newest = max(time.time_ns(), newest + 1)
        os.utime(path, ns=(newest, newest))
        saved = [*(p for p in saved if p != path), path]
    others = [p for p in existing if p not in saved]
    for old in others[max(0, KEEP - len(saved)) :]:
        old.unlink(missing_ok=True)
    return saved


class NotSaved(LookupError):
    """No saved execution answers to that name; the message says why, in one line."""


def load(name_or_prefix: str, directory: Path | None = None) -> Saved:
    """The saved execution named so, or the only one whose name starts so."""
    folder = directory or default_directory()
    files = _newest_first(folder)
    exact = [f for f in files if f.stem == name_or_prefix]
    matches = exact or [f for f in files if f.stem.startswith(name_or_prefix)]
    if not matches:
        raise NotSaved(f"no saved execution named {name_or_prefix!r} in {folder}")
    if len(matches) > 1:
        names = ", ".join(f.stem for f in matches[:3]) + (", …" if len(matches) > 3 else "")
        raise NotSaved(f"{name_or_prefix!r} matches {len(matches)} executions ({names})")
    return _read(matches[0])


def latest(directory: Path | None = None) -> Saved:
    """The execution saved last."""
    folder = directory or default_directory()
    files = _newest_first(folder)
    if not files:
        raise NotSaved(f"no saved executions in {folder}: run `certrelay local run` first")
    return _read(files[0])


def list_saved(directory: Path | None = None) -> list[Saved]:
    """Every saved execution, newest first."""
    return [_read(path) for path in _newest_first(directory or default_directory())]


def _newest_first(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    files = [(p.stat().st_mtime_ns, p.name, p) for p in folder.glob("*.json")]
    return [p for _, _, p in sorted(files, reverse=True)]


def _read(path: Path) -> Saved:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise NotSaved(f"cannot read saved execution {path}: {error}") from None
    started = record.get("started")
    return Saved(
        name=str(record.get("name", path.stem)),
        arn=str(record.get("arn", "")),
        status=str(record.get("status", "UNKNOWN")),
        started=timestamp(started) if started else None,
        history=record.get("history") or [],
    )


def _iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)
