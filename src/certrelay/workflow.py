"""The workflow payload: what the state machine carries between states, as pydantic models.

Between states the payload holds references only (certificate ARN, serial, profile name,
target ids); each function looks up what it acts on again (the deployed profiles, ACM, the
stack's bucket). The parts a certrelay function returns into the payload forbid extra keys,
so a function cannot grow the payload by accident; parts other states write stay open.
tests/contract/test_workflow_paths.py checks every path the ASL reads against these models.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from certrelay.errors import TargetNotInProfile
from certrelay.profiles import MAX_TARGETS

DETAIL_LIMIT = 160  # characters of a target's result detail: 100 of them stay well inside 64 KiB


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class CertificateView(_Open):
    arn: str
    domain: str | None = None
    type: str | None = None
    status: str | None = None
    serial: str | None = None
    not_after: str | None = None
    days_to_expiry: int | None = None
    in_use: bool | None = None


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


class MaintenanceWindowView(_Open):
    days: list[str]
    start: str
    end: str
    timezone: str = "UTC"


class DistributionPlan(_Closed):
    targets: list[TargetRef] = Field(max_length=MAX_TARGETS)
    max_concurrency: int = Field(ge=1, le=40)
    window: MaintenanceWindowView | None = None
    results: list[TargetResult] | None = None


class ApprovalPlan(_Open):
    mode: Literal["human", "auto", "unless-changed"]
    approver: Literal["human", "policy"]
    reason: str
    reasons: list[str]
    approvers: list[str]
    escalation: list[str]
    timeout_seconds: int
    escalation_timeout_seconds: int
    targets: int


class ApprovalDecision(_Open):
    decision: str
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


class FindingPlan(_Open):
    """Raise one problem's finding with its severity (required: the run fails without it), or
    resolve the certificate's open findings."""

    action: str
    problem: str | None = None
    severity: str | None = None
    required: bool | None = None


class StateError(_Open):
    Error: str
    Cause: str | None = None


class FindingIds(_Open):
    ids: list[str]


class Notified(_Open):
    sent: int
    decision: dict[str, Any] | None = None


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


class Workflow(_Open):
    """The execution's payload after Triage Event, with what later states add to it."""

    route: str
    reason: str
    reasons: list[str]
    severity: str
    summary: str
    event_kind: str
    certificate: CertificateView
    owners: list[str]
    profile: str | None
    notify: Literal["immediate", "digest"] = "immediate"  # the profile's, for later steps' mails
    dedupe_key: str
    record_expires_at: str
    mail: OwnerMail | None = None
    recipients: list[str]
    approval: ApprovalPlan | None = None
    distribution: DistributionPlan | None = None
    finding: FindingPlan | None = None
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
