"""ACM EventBridge events as typed models.

`parse_event` turns the raw EventBridge payload into an `AcmEvent` (one model per ACM
detail-type) or raises `MalformedEvent` / `UnsupportedEvent` with one line a person can act on.
Detail models accept both the older and the newer documented field sets and ignore fields they
do not know, so a new ACM field never breaks triage; the fields they do know are strict JSON
types (no "7" for 7, no "true" for true, no number for a date-time).
`check_origin` then refuses, with `ForeignEvent`, an event that is not about this stack's own
account, region and partition (a hub's: an admitted account and Region, about its own
certificates).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from certrelay.arns import ACCOUNT_ID, CERTIFICATE_ARN, REGION
from certrelay.errors import ForeignEvent, MalformedEvent, UnsupportedEvent
from certrelay.reminders import APPROACHING_EXPIRATION_DETAIL_TYPE, SWEEP_SOURCE

if TYPE_CHECKING:  # a type only (organization reads the event models nowhere)
    from certrelay.organization import Organization

ACM_SOURCE = "aws.acm"

NO_RESOURCES = "event has no resources: an ACM event names the certificate ARN in resources[0]"
# The largest event the workflow can take (bytes, measured by `entry_size`): Step Functions
# refuses execution input over 256 KiB, so a bigger event never starts a run. (EventBridge itself
# takes entries up to 1 MiB since 2026-01; see certrelay.local.moto_fixes.) The CLI refuses it
# up front.
EVENT_SIZE_LIMIT = 256 * 1024
_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?\Z"
)


class EventKind(StrEnum):
    """Short names for the ACM detail-types (used in dedupe keys and message attributes)."""

    APPROACHING_EXPIRATION = "ApproachingExpiration"
    RENEWAL_ACTION_REQUIRED = "RenewalActionRequired"
    EXPIRED = "Expired"
    AVAILABLE = "Available"
    REVOKED = "Revoked"
    ROTATED = "Rotated"


DETAIL_TYPES: dict[str, EventKind] = {
    APPROACHING_EXPIRATION_DETAIL_TYPE: EventKind.APPROACHING_EXPIRATION,
    "ACM Certificate Renewal Action Required": EventKind.RENEWAL_ACTION_REQUIRED,
    "ACM Certificate Expired": EventKind.EXPIRED,
    "ACM Certificate Available": EventKind.AVAILABLE,
    "ACM Certificate Revoked": EventKind.REVOKED,
    "ACM Certificate Rotated": EventKind.ROTATED,
}


def _as_utc(value: datetime) -> datetime:
    """Read a timestamp without an offset as UTC (EventBridge and ACM always mean UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso_datetime(value: object) -> datetime:
    """Strict: a JSON string in ISO 8601 with a time (EventBridge's and ACM's own format)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATETIME.fullmatch(value):
        raise PydanticCustomError("datetime_type", "must be an ISO 8601 date-time")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PydanticCustomError("datetime_type", "must be an ISO 8601 date-time") from None


UtcDatetime = Annotated[datetime, BeforeValidator(_iso_datetime), AfterValidator(_as_utc)]
Action = Literal["ISSUANCE", "RENEWAL", "IMPORT", "REIMPORT"]


class AcmDetail(BaseModel):
    """Fields any ACM event detail may carry; all optional, unknown ones ignored."""

    model_config = ConfigDict(
        extra="ignore", frozen=True, populate_by_name=True, strict=True, defer_build=True
    )

    days_to_expiry: int | None = Field(None, alias="DaysToExpiry")
    common_name: str | None = Field(None, alias="CommonName")
    certificate_type: str | None = Field(None, alias="CertificateType")
    action: Action | None = Field(None, alias="Action")
    domain_validation_method: str | None = Field(None, alias="DomainValidationMethod")
    certificate_created_date: UtcDatetime | None = Field(None, alias="CertificateCreatedDate")
    certificate_expiration_date: UtcDatetime | None = Field(None, alias="CertificateExpirationDate")
    in_use: bool | None = Field(None, alias="InUse")
    exported: bool | None = Field(None, alias="Exported")
    renewal_status_reason: str | None = Field(None, alias="RenewalStatusReason")
    # Newer documentation revision.
    first_subject_alternative_name: str | None = Field(None, alias="FirstSubjectAlternativeName")
    validity_in_days: int | None = Field(None, alias="ValidityInDays")
    certificate_key_pair_origin: str | None = Field(None, alias="CertificateKeyPairOrigin")
    acme_endpoint_arn: str | None = Field(None, alias="AcmeEndpointArn")
    acme_account_id: str | None = Field(None, alias="AcmeAccountId")


class ApproachingExpirationDetail(AcmDetail):
    """Daily countdown: needs DaysToExpiry to know whether today is a threshold day."""

    days_to_expiry: int = Field(alias="DaysToExpiry")


class RenewalActionRequiredDetail(AcmDetail):
    """Managed renewal is stuck; RenewalStatusReason says why."""


class ExpiredDetail(AcmDetail):
    """An ACM-issued certificate has expired."""


class AvailableDetail(AcmDetail):
    """A certificate was issued, renewed or (re)imported; Action says which."""

    action: Action = Field(alias="Action")


class RevokedDetail(AcmDetail):
    """A certificate was revoked."""


class RotatedDetail(AcmDetail):
    """ACM rotated the certificate's key pair or contents."""


class EventBridgeEnvelope(BaseModel):
    """EventBridge's event envelope: the fields of Powertools' EventBridgeModel, declared here
    so a cold start does not import Powertools' parser package (every AWS event's models)."""

    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    version: str
    id: str
    source: str
    account: str
    time: datetime
    region: str
    resources: list[str]
    detail_type: str = Field(alias="detail-type")
    detail: Any
    replay_name: str | None = Field(None, alias="replay-name")


class AcmEvent(EventBridgeEnvelope):
    """An ACM EventBridge event; the certificate ARN is resources[0]."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True, defer_build=True)

    time: UtcDatetime
    detail: AcmDetail

    @field_validator("resources")
    @classmethod
    def _names_certificates(cls, resources: list[str]) -> list[str]:
        if not resources:
            raise ValueError(NO_RESOURCES)
        for index, resource in enumerate(resources):
            if not CERTIFICATE_ARN.fullmatch(resource):
                raise ValueError(
                    f"resources[{index}] {_show(resource)} is not an ACM certificate ARN "
                    "(arn:aws:acm:<region>:<account>:certificate/<id>)"
                )
        return resources

    @field_validator("account")
    @classmethod
    def _is_an_account_id(cls, account: str) -> str:
        if not ACCOUNT_ID.fullmatch(account):
            raise ValueError(f"account {_show(account)} is not a 12-digit AWS account ID")
        return account

    @field_validator("region")
    @classmethod
    def _is_a_region(cls, region: str) -> str:
        if not REGION.fullmatch(region):
            raise ValueError(f"region {_show(region)} is not an AWS region name")
        return region

    @property
    def kind(self) -> EventKind:
        return DETAIL_TYPES[self.detail_type]

    @property
    def certificate_arn(self) -> str:
        return self.resources[0]


class ApproachingExpirationEvent(AcmEvent):
    detail: ApproachingExpirationDetail


class RenewalActionRequiredEvent(AcmEvent):
    detail: RenewalActionRequiredDetail


class ExpiredEvent(AcmEvent):
    detail: ExpiredDetail


class AvailableEvent(AcmEvent):
    detail: AvailableDetail


class RevokedEvent(AcmEvent):
    detail: RevokedDetail


class RotatedEvent(AcmEvent):
    detail: RotatedDetail


_MODELS: dict[EventKind, type[AcmEvent]] = {
    EventKind.APPROACHING_EXPIRATION: ApproachingExpirationEvent,
    EventKind.RENEWAL_ACTION_REQUIRED: RenewalActionRequiredEvent,
    EventKind.EXPIRED: ExpiredEvent,
    EventKind.AVAILABLE: AvailableEvent,
    EventKind.REVOKED: RevokedEvent,
    EventKind.ROTATED: RotatedEvent,
}


def build_models() -> None:
    """Build the six event models now: they wait for first use (`defer_build`), and a function
    that parses an event on every call (triage) builds them in its init, not in its first call."""
    for model in _MODELS.values():
        model.model_rebuild()


def parse_event(raw: Mapping[str, Any]) -> AcmEvent:
    """Validate an EventBridge payload as one of the six ACM events."""
    if not isinstance(raw, Mapping):
        raise MalformedEvent(
            f"event is a {type(raw).__name__}, not a JSON object: pass the EventBridge event itself"
        )
    source = raw.get("source")
    if source not in (ACM_SOURCE, SWEEP_SOURCE):
        raise MalformedEvent(
            f"event source is {_show(source)}, not 'aws.acm': certrelay only handles ACM events"
        )
    detail_type = raw.get("detail-type")
    if source == SWEEP_SOURCE and detail_type != APPROACHING_EXPIRATION_DETAIL_TYPE:
        raise UnsupportedEvent(
            f"the sweep only sends {APPROACHING_EXPIRATION_DETAIL_TYPE!r}, not {_show(detail_type)}"
        )
    if not isinstance(detail_type, str) or not detail_type:
        raise MalformedEvent("event has no detail-type: an ACM event names its kind in detail-type")
    kind = DETAIL_TYPES.get(detail_type)
    if kind is None:
        raise UnsupportedEvent(
            f"detail-type {_show(detail_type)} is not an ACM event certrelay handles "
            f"(expected one of: {', '.join(DETAIL_TYPES)})"
        )
    if raw.get("resources") in (None, []):
        raise MalformedEvent(NO_RESOURCES)
    try:
        return _MODELS[kind].model_validate(raw)
    except ValidationError as error:
        raise MalformedEvent(_explain(detail_type, error)) from None


def check_origin(
    event: AcmEvent,
    *,
    organization: Organization | None = None,
    account: str = "",
    region: str = "",
    partition: str = "",
) -> None:
    """Raise ForeignEvent unless the event and every certificate it names are the stack's to act on.

    ACM sends a certificate's events in the certificate's own account and region; anything else
    was forwarded, replayed or forged, and triage must not act on it for this stack's owners.
    A single stack (`account`/`region`/`partition`, or a single-mode `organization`) takes its
    own only; a hub takes an admitted (account, Region) whose certificates are in that same
    account, Region and the hub's partition.
    """
    if organization is not None and organization.is_hub:
        _check_hub_origin(event, organization)
        return
    if organization is not None:
        account, region = organization.hub_account, organization.hub_region
        partition = organization.partition
    if event.account != account:
        raise ForeignEvent(
            f"the event is from account {event.account}, not this stack's account {account}"
        )
    if event.region != region:
        raise ForeignEvent(
            f"the event is from region {event.region}, not this stack's region {region}"
        )
    for resource in event.resources:
        parts = CERTIFICATE_ARN.fullmatch(resource)
        if parts is None:  # parse_event already refused it; kept for callers of the model
            raise ForeignEvent(f"{_show(resource)} is not an ACM certificate ARN")
        theirs = (parts["partition"], parts["region"], parts["account"])
        if theirs != (partition, region, account):
            raise ForeignEvent(
                f"certificate {_show(resource, 120)} is not in this stack's partition, region "
                f"and account ({partition}, {region}, {account})"
            )


def _check_hub_origin(event: AcmEvent, organization: Organization) -> None:
    """A hub: an admitted account and Region, naming certificates of that account and Region."""
    if not organization.admits(event.account, event.region):
        known = event.account == organization.hub_account
        known = known or event.account in organization.member_accounts
        raise ForeignEvent(
            f"the event is from region {event.region}, not one this hub serves "
            f"({', '.join(sorted(organization.regions))})"
            if known
            else f"the event is from account {event.account}, not the hub's or a member's"
        )
    own = (organization.partition, event.region, event.account)
    for resource in event.resources:
        parts = CERTIFICATE_ARN.fullmatch(resource)
        if parts is None:  # parse_event already refused it; kept for callers of the model
            raise ForeignEvent(f"{_show(resource)} is not an ACM certificate ARN")
        if (parts["partition"], parts["region"], parts["account"]) != own:
            raise ForeignEvent(
                f"certificate {_show(resource, 120)} is not in the event's own partition, "
                f"region and account ({', '.join(own)})"
            )


def entry_size(event: Mapping[str, Any]) -> int:
    """The event's size as EventBridge counts a PutEvents entry (bytes, UTF-8).

    Time counts 14 bytes; Source, DetailType, Detail (as compact JSON) and each resource count
    their UTF-8 length. Detail is measured in its most compact form, so an event over the limit
    here is over it however the sender encodes it.
    """
    size = 14 if event.get("time") is not None else 0
    for key in ("source", "detail-type"):
        value = event.get(key)
        size += len(value.encode("utf-8", "surrogatepass")) if isinstance(value, str) else 0
    if "detail" in event:
        detail = event["detail"]  # a PutEvents Detail string counts as sent
        if not isinstance(detail, str):
            detail = json.dumps(detail, separators=(",", ":"), ensure_ascii=False)
        size += len(detail.encode("utf-8", "surrogatepass"))
    resources = event.get("resources")
    for resource in resources if isinstance(resources, list) else []:
        size += len(resource.encode("utf-8", "surrogatepass")) if isinstance(resource, str) else 0
    return size


_PROBLEMS = {
    "missing": "is missing",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "datetime_parsing": "must be an ISO 8601 date-time such as 2024-01-31T12:00:00Z",
    "datetime_from_date_parsing": "must be an ISO 8601 date-time such as 2024-01-31T12:00:00Z",
    "datetime_type": "must be an ISO 8601 date-time such as 2024-01-31T12:00:00Z",
}


def _explain(detail_type: str, error: ValidationError) -> str:
    """One line for the first problem pydantic found, plus how many more there were."""
    errors = error.errors(include_url=False)
    first = errors[0]
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    if first["type"] == "value_error":
        return f"{_context_message(first)}{more}"
    field = _location(first)
    problem = _PROBLEMS.get(first["type"])
    if problem is None and first["type"] == "literal_error":
        problem = f"must be one of {first.get('ctx', {}).get('expected', '')}"
    if problem is None:
        problem = first["msg"].replace("\n", " ")
    got = "" if first["type"] == "missing" else f" (got {_show(first['input'])})"
    return f"{detail_type} event: {field} {problem}{got}{more}"


def _context_message(error: ErrorDetails) -> str:
    ctx = error.get("ctx") or {}
    return str(ctx.get("error", error["msg"])).replace("\n", " ")


def _location(error: ErrorDetails) -> str:
    """`detail.DaysToExpiry`, `resources[0]`: the field as it appears in the event JSON."""
    text = ""
    for part in error["loc"]:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "event"


def _show(value: object, limit: int = 80) -> str:
    """A short, single-line rendering of a user-supplied value for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
