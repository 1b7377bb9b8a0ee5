"""Events out: what the workflow did, put on the account's default bus for teams' own rules.

Every outcome is one EventBridge event with source `certrelay` and detail-type
`certrelay.<outcome>`, so a team routes what it cares about (tickets, paging, chat) with a rule
of its own. The models below are the schema (schema_version "1"); docs/events-out.md documents
it and a test validates every event the local stack emits against it. Events carry references
and facts only: never key material, a passphrase, a task token or an approval link.

Most events are put by the state machine itself (`events:putEvents` states named "Announce …");
the two outcomes only a function knows about (approval requested, findings raised or resolved)
are put by that function through `announce`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from certrelay.certificate_facts import CertificateFacts

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

SOURCE = "certrelay"
SCHEMA_VERSION = "1"
DETAIL_TYPE_PREFIX = "certrelay."


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


# Each outcome's model: `announce` validates a detail with its outcome's model, as the union
# would after reading its discriminator, so a function builds only the models it announces.
OUTCOME_MODELS: dict[str, type[_Announcement]] = {
    "owners-notified": OwnersNotified,
    "approval-requested": ApprovalRequested,
    "approved": Approved,
    "rejected": Rejected,
    "distributed": DistributionResult,
    "distribution-incomplete": DistributionResult,
    "finding-raised": FindingRaised,
    "finding-resolved": FindingResolved,
}
OUTCOMES = tuple(OUTCOME_MODELS)


def build_models(*outcomes: str) -> None:
    """Build now the models of the outcomes a function announces: they wait for first use
    (`defer_build`), and a function that announces on every call builds them in its init, not
    in its first call (`announce` validates and writes each outcome with its own model). The
    union (`parse`, `json_schema`: the local stack and the tests) is left to its first use."""
    for model in dict.fromkeys(OUTCOME_MODELS[outcome] for outcome in outcomes):
        model.model_rebuild()


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


def announce(events: EventBridgeClient, detail: dict[str, Any]) -> None:
    """Put one validated event on the default bus; an entry EventBridge refuses raises."""
    outcome = detail.get("outcome")
    if not isinstance(outcome, str) or outcome not in OUTCOME_MODELS:
        raise ValueError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    announcement = OUTCOME_MODELS[outcome].model_validate(detail)
    response = events.put_events(
        Entries=[
            {
                "Source": SOURCE,
                "DetailType": DETAIL_TYPE_PREFIX + outcome,  # as its model took it (a Literal)
                "Resources": [announcement.certificate.arn],
                "Detail": announcement.model_dump_json(),
            }
        ]
    )
    if response.get("FailedEntryCount"):
        entry = response["Entries"][0]
        raise AnnouncementFailed(f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")


class AnnouncementFailed(Exception):
    """EventBridge did not accept the event (the caller decides whether that matters)."""
