"""The workflow payload: what the state machine carries between states, as pydantic models.

Between states the payload holds references only (certificate ARN, serial, profile name,
target ids); each function looks up what it acts on again (the deployed profiles, ACM, the
stack's bucket). What every Lambda Task state's function returns (FUNCTION_RESULTS), and
what the callback of a `.waitForTaskToken` state answers (CALLBACK_RESULTS), is a closed
model: extra keys are refused, so a function cannot grow the payload, or put a secret in it,
by accident. Only the payload as a whole (Workflow) stays open to the parts states add.
tests/contract/test_workflow_paths.py checks every path the ASL reads against these models;
tests/contract/test_lambda_results.py holds the tables to the ASL and every model closed.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from certrelay.certificate_facts import CertificateFacts
from certrelay.errors import TargetNotInProfile
from certrelay.profiles import MAX_TARGETS
from certrelay.text import DETAIL_LIMIT


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class _Result(_Closed):
    """A function's answer that only the tests validate: its schema is built on first use, not
    when a handler imports this module (a cold start pays nothing for it)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


# ACM's facts about the certificate, as triage read them (None: ACM has no such certificate):
# the same closed model certrelay's events out carry.
CertificateView = CertificateFacts


class TargetRef(_Closed):
    """A target by reference: its id in the profile and its kind (for the Map's Choice)."""

    id: str = Field(max_length=120)
    kind: Literal["s3", "server"]


class TargetResult(_Closed):
    """One Map item's result, a fixed small shape whatever happened to the target."""

    target: str = Field(max_length=120)
    kind: str = Field(max_length=16)
    status: Literal["DISTRIBUTED", "FAILED", "TIMED_OUT"]
    detail: str = Field(max_length=DETAIL_LIMIT)


class MaintenanceWindowView(_Closed):
    days: list[str]
    start: str
    end: str
    timezone: str = "UTC"


class DistributionPlan(_Closed):
    targets: list[TargetRef] = Field(max_length=MAX_TARGETS)
    max_concurrency: int = Field(ge=1, le=40)
    window: MaintenanceWindowView | None = None
    results: list[TargetResult] | None = None


class ApprovalPlan(_Result):
    mode: Literal["human", "auto", "unless-changed"]
    approver: Literal["human", "policy"]
    reason: str
    reasons: list[str]
    approvers: list[str]
    escalation: list[str]
    timeout_seconds: int
    escalation_timeout_seconds: int
    targets: int


class ApprovalDecision(_Result):
    """An approval: what the approval API's SendTaskSuccess answers Request Approval and
    Escalate Approval with, or what Approved By Policy writes (with the plan's reasons). A
    rejection is a SendTaskFailure (ApprovalRejected), never a result."""

    decision: Literal["approve"]
    approver: str
    reason: str | None = None
    reasons: list[str] | None = None
    decided_at: str | None = None


class WindowOpening(_Closed):
    opens_at: str | None


class BundleRef(_Closed):
    """What Export Certificate leaves in the payload: which bundle, never where it lives."""

    serial: str
    fingerprint: str
    not_after: str
    created: bool


class ExportResult(_Closed):
    """The export function's whole answer (the state keeps only BundleRef's fields of it)."""

    bucket: str
    prefix: str
    keys: dict[str, str]
    versions: dict[str, str | None]
    fingerprint: str
    serial: str
    not_after: str
    secret_arn: str
    secret_version: str | None
    created: bool


class DistributionReport(_Closed):
    sent: int
    complete: bool
    outcome: Literal["distributed", "distribution-incomplete"]
    distributed: int
    failed: int
    failed_targets: list[str]
    cause: str


class RecordResult(_Closed):
    """What Record Distribution leaves in the payload: the record it wrote, in brief."""

    serial: str
    verified: bool
    last_run_succeeded: bool
    targets: int


class FindingPlan(_Result):
    """Raise one problem's finding with its severity (required: the run fails without it), or
    resolve the certificate's open findings."""

    action: str
    problem: str | None = None
    severity: str | None = None
    required: bool | None = None


class StateError(_Open):
    Error: str
    Cause: str | None = None


class FindingIds(_Closed):
    ids: list[str]


class RejectionFacts(_Result):
    """Who rejected, when and why ("unknown" when the cause does not say)."""

    approver: str
    decided_at: str
    reason: str


class Notified(_Result):
    sent: int
    decision: RejectionFacts | None = None


class OwnerMail(_Closed):
    """The one mail every owner gets; Notify Owners publishes it once per recipient."""

    subject: str = Field(max_length=100)
    message: str
    severity: str
    event_kind: str
    certificate: str
    # Deliver Now?: "immediate" is published, "digest" is held for the owner's daily digest
    delivery: Literal["immediate", "digest"] = "immediate"


class OwnerMailItem(_Closed):
    """One item of Notify Owners: the mail, one recipient, its claim marker and its expiry,
    and the decision's one-line summary (what the digest lists for a held mail)."""

    mail: OwnerMail
    recipient: str
    marker: str
    expires_at: str
    summary: str


class OwnerMailSummary(_Closed):
    """Notify Owners' summary: did any owner's mail fail (the event is then released)?"""

    unmailed: bool


class TriageResult(_Result):
    """Triage Event's answer, the payload every later state starts from: the decision, ACM's
    facts, the owners and their one mail, the idempotency key, and the plan's parts."""

    route: str
    reason: str
    reasons: list[str]
    severity: str
    summary: str
    event_kind: str
    certificate: CertificateView
    owners: list[str]
    profile: str | None
    notify: Literal["immediate", "digest"]  # the profile's, for later steps' mails
    dedupe_key: str
    record_expires_at: str
    mail: OwnerMail | None
    recipients: list[str]
    approval: ApprovalPlan | None
    distribution: DistributionPlan | None
    finding: FindingPlan | None


class Workflow(TriageResult):
    """The execution's payload after Triage Event, with what later states add to it."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    approval_decision: ApprovalDecision | None = None
    window: WindowOpening | None = None
    bundle: BundleRef | None = None
    report: DistributionReport | None = None
    record: RecordResult | None = None
    record_error: StateError | None = None
    findings: FindingIds | None = None
    notified: Notified | None = None
    error: StateError | None = None
    owner_mail: OwnerMailSummary | None = None
    findings_error: StateError | None = None
    forget_error: StateError | None = None


class DistributionItem(_Closed):
    """One Map item of Distribute Certificate: references only, resolved again by the function."""

    certificate_arn: str
    serial: str = Field(pattern=r"^[0-9a-f]{2,128}$")
    profile: str = Field(max_length=64)
    target: TargetRef


class InstallRequest(_Closed):
    """Send Install Command's payload (the task token is never logged)."""

    state: str
    execution: str
    token: str
    item: DistributionItem


class ItemRequest(_Closed):
    """Copy To Bucket's and Cancel Install's payload."""

    state: str
    execution: str
    item: DistributionItem


Request = TypeVar("Request", InstallRequest, ItemRequest)


def build_requests() -> None:
    """Build the distribute states' request models now: they wait for first use (`defer_build`),
    and the distribute function parses one on every call, so its init builds them."""
    for model in (DistributionItem, InstallRequest, ItemRequest):
        model.model_rebuild()


def parse_request(event: dict[str, Any], model: type[Request], kind: str | None) -> Request:
    """A distribute state's request, for a target of `kind` (any kind if None).

    Anything but references is TargetNotInProfile; the message names the fields only: an
    input value may be the task token.
    """
    try:
        request = model.model_validate(event)
    except ValidationError as error:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in error.errors())
        raise TargetNotInProfile(f"not a reference to a profile's target ({fields})") from None
    if kind is not None and request.item.target.kind != kind:
        raise TargetNotInProfile(f"{request.state} is not for {request.item.target.kind} targets")
    return request


class RaisedFinding(_Result):
    """Raise Finding, Raise Distribution Finding, Raise Export Finding: the finding's id."""

    action: Literal["raise"]
    ids: list[str] = Field(min_length=1, max_length=1)
    severity: str


class ResolvedFindings(_Result):
    """Resolve Finding, Close Findings: the ids of the findings archived (maybe none)."""

    action: Literal["resolve"]
    ids: list[str]


class ApprovalReceipt(_Result):
    """Request Approval's and Escalate Approval's own answer (the task then waits for the
    approval API): the round, whom it mailed and until when; no link, no token."""

    round: Literal["request", "escalation"]
    recipients: list[str]
    expires_at: str
    mailed: bool


class InstallReceipt(_Result):
    """Send Install Command's own answer (the task then waits for SSM's callback)."""

    command_id: str
    instances: int
    status: Literal["SENT"]


class DistributionSummary(_Result):
    """Which targets got the certificate (certrelay.distribution.summarize)."""

    distributed: int
    failed: int
    failed_targets: list[str]
    complete: bool
    outcome: Literal["distributed", "distribution-incomplete"]
    cause: str


class OutcomeTold(_Result):
    """Notify Export Failure, Notify Expiry: how many were mailed, and the targets' summary."""

    sent: int
    summary: DistributionSummary


class DistributionTold(OutcomeTold):
    """Report Distribution: as OutcomeTold; `held` when a routine report waits for the digest."""

    held: int | None = None


class RejectionTold(OutcomeTold):
    """Notify Rejection: as OutcomeTold, with who rejected, when and why."""

    decision: RejectionFacts


class SweepPairRef(_Closed):
    """One item of the organisation sweep's Distributed Map: an account and a Region."""

    account: str
    region: str


class SweepPairs(_Result):
    """List Sweep Pairs: every (account, Region) pair the hub covers, hub first."""

    pairs: list[SweepPairRef]


class PairSwept(_Result):
    """Sweep Pair: what one pair's listing saw and sent (failed: "<arn>: <error code>")."""

    account: str
    region: str
    listed: int
    due: int
    sent: int
    failed: list[str]


class PairFailure(_Closed):
    """A pair the sweep could not finish, as the child's Catch reported it."""

    account: str
    region: str
    error: str
    cause: str


class SweepSummaryResult(_Result):
    """Summarise Sweep: the pairs added up; `incomplete` says why the sweep stopped short."""

    pairs: int
    swept: int
    failed: int
    listed: int
    due: int
    sent: int
    failures: list[PairFailure]
    complete: bool
    incomplete: str


# What each Lambda Task state's function returns: its TaskSucceeded `Payload` (for a
# `.waitForTaskToken` state, its TaskSubmitted `Payload`). Every Lambda Task state of the ASL,
# Map item states included, has exactly one entry (tests/contract/test_lambda_results.py).
FUNCTION_RESULTS: dict[str, type[BaseModel]] = {
    "Triage Event": TriageResult,
    "Raise Finding": RaisedFinding,
    "Resolve Finding": ResolvedFindings,
    "Request Approval": ApprovalReceipt,
    "Escalate Approval": ApprovalReceipt,
    "Find Window": WindowOpening,
    "Export Certificate": ExportResult,
    "Copy To Bucket": TargetResult,
    "Send Install Command": InstallReceipt,
    "Cancel Install": TargetResult,
    "Report Distribution": DistributionTold,
    "Record Distribution": RecordResult,
    "Close Findings": ResolvedFindings,
    "Raise Distribution Finding": RaisedFinding,
    "Notify Export Failure": OutcomeTold,
    "Raise Export Finding": RaisedFinding,
    "Notify Rejection": RejectionTold,
    "Notify Expiry": OutcomeTold,
    # the organisation sweep (statemachines/org_sweep.asl.json)
    "List Sweep Pairs": SweepPairs,
    "Sweep Pair": PairSwept,
    "Summarise Sweep": SweepSummaryResult,
}
# What the callback of each `.waitForTaskToken` state answers, its TaskSucceeded output: the
# approval API's SendTaskSuccess, and certrelay.install_callbacks' for an install.
CALLBACK_RESULTS: dict[str, type[BaseModel]] = {
    "Request Approval": ApprovalDecision,
    "Escalate Approval": ApprovalDecision,
    "Send Install Command": TargetResult,
}


def check_result(state: str, result: Any, *, callback: bool = False) -> BaseModel:
    """`result` as the model the state's function (or its callback) answers with; a
    ValidationError for a key the model does not declare, a missing key or a wrong type."""
    model = (CALLBACK_RESULTS if callback else FUNCTION_RESULTS)[state]
    return model.model_validate(result, strict=True)
