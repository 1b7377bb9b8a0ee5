"""An event from the user, refused in one line if the stack would never take it.

Read from a file (`certrelay local run`, `local send`) or posted to the console: unreadable,
not JSON, nested deeper than an event, over EventBridge's size limit, malformed, or about a
certificate in another account, region or partition. Checked before anything is deployed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from certrelay.errors import ForeignEvent
from certrelay.events import EVENT_SIZE_LIMIT, check_origin, entry_size
from certrelay.local.errors import BadInput


def read_event(path: Path) -> dict[str, Any]:
    """Load an event file, or raise BadInput naming the file and the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise BadInput(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path} is not UTF-8 text") from None
    try:
        event = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInput(
            f"{path} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        raise BadInput(f"{path} nests JSON too deeply to be an EventBridge event") from None
    if not isinstance(event, dict):
        raise BadInput(f"{path} must hold one JSON object (an EventBridge event)")
    if depth(event) > MAX_EVENT_DEPTH:
        raise BadInput(
            f"{path} nests JSON {depth(event)} levels deep; certrelay reads events of at most "
            f"{MAX_EVENT_DEPTH} (an ACM event has 2)"
        )
    check_size(event, str(path))
    return event


def check_size(event: dict[str, Any], name: str = "the event") -> None:
    """Refuse an event EventBridge would refuse: over its PutEvents entry limit."""
    size = entry_size(event)
    if size > EVENT_SIZE_LIMIT:
        raise BadInput(
            f"{name} is a {size}-byte event; Step Functions refuses execution input over "
            f"{EVENT_SIZE_LIMIT} bytes (256 KiB), so it could never start a run"
        )


# JSON nested deeper than this is refused before any parser recurses into it: an ACM event
# nests 2 levels, and Python's own parsers (json, pydantic, the ASL interpreter) stop near 1,000.
MAX_EVENT_DEPTH = 64


def depth(value: object) -> int:
    """How deeply `value` nests (a scalar is 0, `{}` is 1), without recursion."""
    deepest = 0
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level + 1)
            pending.extend((child, level + 1) for child in item)
    return deepest


def check_event(event: dict[str, Any], *, account: str, region: str, parse: Any) -> None:
    """Refuse, in one line, an event this stack would never accept: over EventBridge's size
    limit, malformed, of another kind, or from (or about a certificate in) another account,
    region or partition."""
    check_size(event)  # again: a re-stamped event is a little larger
    parsed = parse(event)  # MalformedEvent / UnsupportedEvent name the problem
    try:
        check_origin(parsed, account=account, region=region, partition=LOCAL_PARTITION)
    except ForeignEvent as error:
        raise BadInput(
            f"{error}: this stack only takes events about its own certificates (use --cert "
            "NAME to re-stamp it for a fleet certificate)"
        ) from None


LOCAL_PARTITION = "aws"  # the local engine deploys the template as in the aws partition
