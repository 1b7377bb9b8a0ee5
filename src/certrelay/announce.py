"""Put one certrelay event out, checked against the events-out schema, without pydantic.

certrelay.announcements holds the events' models (pydantic): the schema teams' rules rely on,
docs/events-out.md and the parser of events read back. The functions that put events (findings,
request-approval) need only the check and the JSON, so they read the models' own JSON Schema,
compiled into `events_out_schema.json` (`python -m certrelay.announcements --write`, `--check`;
tests/contract/test_events_out_schema.py keeps it current), and check a detail with the few
rules it uses: types, `const` and `enum`, required fields, no others, defaults, and `outcome`
choosing the shape. The JSON is the one the models write: their field order, defaults filled
in, compact. The check is the models' in strict mode: JSON's own types only (pydantic's lax
mode would also take "3" for 3); tests/unit/test_announce.py compares both over many details.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

SOURCE = "certrelay"
SCHEMA_VERSION = "1"
DETAIL_TYPE_PREFIX = "certrelay."
SCHEMA_FILE = Path(__file__).with_name("events_out_schema.json")
SCHEMA: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
_DEFINITIONS: dict[str, Any] = SCHEMA["$defs"]
_SHAPES: dict[str, str] = SCHEMA["discriminator"]["mapping"]  # outcome -> "#/$defs/<Model>"
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (Mapping,),
    "null": (type(None),),
}


class AnnouncementInvalid(ValueError):
    """A detail the events-out schema does not take; the message names the field."""


class AnnouncementFailed(Exception):
    """EventBridge did not accept the event (the caller decides whether that matters)."""


def common_fields(decision: dict[str, Any], execution: str) -> dict[str, Any]:
    """The shared fields, from the workflow's decision (the state the functions receive)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "execution": execution,
        "certificate": decision.get("certificate") or {},
        "event_kind": decision.get("event_kind") or "",
        "route": decision.get("route") or "",
        "profile": decision.get("profile"),
    }


def checked(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The detail as its outcome's model writes it (field order, defaults); AnnouncementInvalid
    when the schema does not take it."""
    if not isinstance(detail, Mapping):
        raise AnnouncementInvalid("the detail is not an object")
    outcome = detail.get("outcome")
    shape = _SHAPES.get(outcome) if isinstance(outcome, str) else None
    if shape is None:
        raise AnnouncementInvalid(f"outcome {outcome!r} is not an event certrelay puts")
    return _object(_resolve({"$ref": shape}), detail, "detail")


def dumped(detail: Mapping[str, Any]) -> str:
    """The checked detail as the event's JSON: compact, UTF-8 as is."""
    return json.dumps(checked(detail), ensure_ascii=False, separators=(",", ":"))


def announce(events: EventBridgeClient, detail: dict[str, Any]) -> None:
    """Put one checked event on the default bus; an entry EventBridge refuses raises."""
    body = dumped(detail)
    response = events.put_events(
        Entries=[
            {
                "Source": SOURCE,
                "DetailType": DETAIL_TYPE_PREFIX + str(detail["outcome"]),
                "Resources": [str(detail["certificate"]["arn"])],
                "Detail": body,
            }
        ]
    )
    if response.get("FailedEntryCount"):
        entry = response["Entries"][0]
        raise AnnouncementFailed(f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    reference = schema.get("$ref")
    return _DEFINITIONS[reference.rsplit("/", 1)[1]] if reference else schema


def _object(schema: Mapping[str, Any], value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise AnnouncementInvalid(f"{where} must be an object")
    properties: dict[str, Any] = schema["properties"]
    extra = sorted(str(name) for name in value if name not in properties)
    if extra:
        raise AnnouncementInvalid(f"{where}: {', '.join(extra)} not allowed")
    missing = [name for name in schema.get("required", ()) if name not in value]
    if missing:
        raise AnnouncementInvalid(f"{where}: {', '.join(missing)} missing")
    written: dict[str, Any] = {}
    for name, field in properties.items():
        if name in value:
            written[name] = _value(field, value[name], f"{where}.{name}")
        else:
            written[name] = field["default"]
    return written


def _value(schema: Mapping[str, Any], value: object, where: str) -> Any:
    schema = _resolve(schema)
    if "anyOf" in schema:
        for option in schema["anyOf"]:
            try:
                return _value(option, value, where)
            except AnnouncementInvalid:
                continue
        raise AnnouncementInvalid(f"{where} is none of the types it may be")
    kind = str(schema.get("type"))
    if kind == "object" or "properties" in schema:
        return _object(schema, value, where)
    types = _JSON_TYPES.get(kind)
    if types is None:
        raise AnnouncementInvalid(f"{where}: the schema's type {kind} is not one this check knows")
    if not isinstance(value, types) or (kind == "integer" and isinstance(value, bool)):
        raise AnnouncementInvalid(f"{where} must be of type {kind}")
    if "const" in schema and value != schema["const"]:
        raise AnnouncementInvalid(f"{where} must be {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise AnnouncementInvalid(f"{where} must be one of {schema['enum']}")
    if isinstance(value, list | tuple):  # an array: its items each checked
        items = schema.get("items", {})
        return [_value(items, member, f"{where}[{i}]") for i, member in enumerate(value)]
    return value
