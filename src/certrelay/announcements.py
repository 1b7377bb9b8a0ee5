"""Events out: what the workflow did, put on the account's default bus for teams' own rules.

Every outcome is one EventBridge event with source `certrelay` and detail-type
`certrelay.<outcome>`, so a team routes what it cares about (tickets, paging, chat) with a rule
of its own. The models below are the schema (schema_version "1"); docs/events-out.md documents
it and a test validates every event the local stack emits against it. Events carry references
and facts only: never key material, a passphrase, a task token or an approval link.

Most events are put by the state machine itself (`events:putEvents` states named "Announce …");
the two outcomes only a function knows about (approval requested, findings raised or resolved)
are put by that function through `announce` (certrelay.announce: the same schema, compiled
from these models, checked without pydantic).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from certrelay.announce import (
    DETAIL_TYPE_PREFIX,
    SCHEMA_FILE,
    SCHEMA_VERSION,
    SOURCE,
    AnnouncementFailed,
    announce,
    common_fields,
)
from certrelay.certificate_facts import CertificateFacts

# Putting an event (announce) and its shared fields live in certrelay.announce, pydantic-free,
# for the functions; here for the models' users.
__all__ = [
    "DETAIL_TYPE_PREFIX",
    "SCHEMA_VERSION",
    "SOURCE",
    "AnnouncementFailed",
    "announce",
    "common_fields",
]


class _Announcement(BaseModel):
    """Fields every certrelay event has."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    schema_version: Literal["1"]
    execution: str = Field(description="the execution's ARN: the run in the Step Functions console")
    certificate: CertificateFacts
    event_kind: str = Field(description="the ACM event that started the run, e.g. Expired")
    route: str
    profile: str | None


class OwnersNotified(_Announcement):
    outcome: Literal["owners-notified"]
    reason: str
    severity: str
    owners: list[str]


Approver = Literal["human", "policy"]
_APPROVER = "who approves, as the profile's approval policy judged: human or policy"
_APPROVAL_REASON = "approval_policy's reason code, e.g. LikeForLike, NamesChanged, PolicyHuman"


class ApprovalRequested(_Announcement):
    outcome: Literal["approval-requested"]
    round: Literal["request", "escalation"]
    approvers: list[str]
    expires_at: str
    approval_reason: str = Field(description=_APPROVAL_REASON)


class ApprovalDecision(BaseModel):
    """Who decided, when and why (`approver` is 'policy' when the profile's policy approved;
    `reason` is then its reason code and `reasons` every code that applied)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    decision: Literal["approve", "reject"] | None = None
    approver: str
    decided_at: str
    reason: str
    reasons: list[str] | None = None


class Approved(_Announcement):
    outcome: Literal["approved"]
    decision: ApprovalDecision
    approver: Approver = Field(description=_APPROVER)
    approval_reason: str = Field(description=_APPROVAL_REASON)


class Rejected(_Announcement):
    outcome: Literal["rejected"]
    decision: ApprovalDecision


class DistributionResult(_Announcement):
    outcome: Literal["distributed", "distribution-incomplete"]
    distributed: int
    failed: int
    failed_targets: list[str]
    approver: Approver = Field(description=_APPROVER)
    approval_reason: str = Field(description=_APPROVAL_REASON)


class FindingRaised(_Announcement):
    outcome: Literal["finding-raised"]
    problem: str
    severity: str
    finding_ids: list[str]


class FindingResolved(_Announcement):
    outcome: Literal["finding-resolved"]
    finding_ids: list[str]


Announcement = Annotated[
    OwnersNotified
    | ApprovalRequested
    | Approved
    | Rejected
    | DistributionResult
    | FindingRaised
    | FindingResolved,
    Field(discriminator="outcome"),
]
_ANNOUNCEMENT: TypeAdapter[Announcement] = TypeAdapter(
    Announcement, config=ConfigDict(defer_build=True)
)


OUTCOMES = (
    "owners-notified",
    "approval-requested",
    "approved",
    "rejected",
    "distributed",
    "distribution-incomplete",
    "finding-raised",
    "finding-resolved",
)


def parse(event: dict[str, Any]) -> Announcement:
    """Validate one event as it arrives on the bus (raises ValueError on any mismatch)."""
    if event.get("source") != SOURCE:
        raise ValueError(f"source is {event.get('source')!r}, not {SOURCE!r}")
    detail = event.get("detail")
    if isinstance(detail, str):
        detail = json.loads(detail)
    announcement = _ANNOUNCEMENT.validate_python(detail)
    expected = DETAIL_TYPE_PREFIX + announcement.outcome
    if event.get("detail-type") != expected:
        raise ValueError(f"detail-type is {event.get('detail-type')!r}, expected {expected!r}")
    return announcement


def json_schema() -> dict[str, Any]:
    """The detail's JSON Schema (one of the outcomes, told apart by `outcome`)."""
    return _ANNOUNCEMENT.json_schema()


def main(argv: list[str]) -> int:
    """--write: certrelay.announce's schema file from these models; --check: exit 1 unless it is
    current."""
    text = json.dumps(json_schema(), indent=1) + "\n"
    if argv == ["--write"]:
        SCHEMA_FILE.write_text(text, encoding="utf-8")
        return 0
    if argv == ["--check"]:
        current = SCHEMA_FILE.read_text(encoding="utf-8") == text
        if not current:
            print(f"{SCHEMA_FILE} is not the models' schema: --write", file=sys.stderr)  # noqa: T201
        return 0 if current else 1
    print("usage: python -m certrelay.announcements --write|--check", file=sys.stderr)  # noqa: T201
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
