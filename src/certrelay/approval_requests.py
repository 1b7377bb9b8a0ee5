"""The request side of approval: store the waiting task token, mail each approver a link.

"Request Approval" waits on its task token; this stores the token, encrypted under the approval
key (see approval_tokens), in a request record, stores one
approval record per recipient, and publishes each recipient their own link. It returns a receipt
that holds no secret. Running the same invocation again (a Lambda retry, same task token) mails
only the recipients an earlier attempt did not reach: those reached keep their one mail and link.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from certrelay import approval_pages as pages
from certrelay.approval_links import RequestSettings, digest, new_link_id
from certrelay.approval_records import (
    APPROVAL,
    PENDING,
    REQUEST,
    error_code,
    get_record,
    put_new,
    set_fields,
)
from certrelay.approval_tokens import TOKEN_FIELD, Kms, seal
from certrelay.errors import InvalidApprovalRequest, ServiceThrottled
from certrelay.mail import console_url_for, sns_message
from certrelay.owners import normalize_email
from certrelay.text import iso_z, iso_z_at

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sns import SNSClient

_EVENT_KINDS = {"request": "ApprovalRequested", "escalation": "ApprovalEscalated"}
_THROTTLED = frozenset(
    {"ThrottlingException", "Throttling", "ProvisionedThroughputExceededException"}
    | {"Throttled", "KMSThrottling"}  # SNS Publish's own throttling codes
    | {"RequestLimitExceeded", "InternalServerError", "InternalError", "ServiceUnavailable"}
)

# A marker per (round's task token, recipient): SENDING while its mail is out, SENT once sent.
MAILED, SENDING, SENT = "mailed#", "SENDING", "SENT"

# The table's TTL (purge_at) runs this long past a link's deadline, so a late click still gets
# "expired" (410) or "already decided" (409) instead of "unknown" (404).
RECORD_GRACE_SECONDS = 30 * 24 * 3600


def request_approval(
    payload: Mapping[str, Any],
    *,
    dynamodb: DynamoDBClient,
    sns: SNSClient,
    kms: Kms,
    key: bytes,
    settings: RequestSettings,
    now: datetime,
) -> dict[str, Any]:
    """Store the token and one link per recipient, mail each their link; return no secrets.

    The receipt says the round, its recipients and deadline, and whether this call mailed them
    (`mailed` is False when Lambda delivered an invocation whose mails went out already).
    """
    token, execution, round_, decision, approval = _request_payload(payload)
    escalation = _emails(approval.get("escalation")) if round_ == "escalation" else ()
    approvers = _emails(approval.get("approvers"))
    recipients = list(dict.fromkeys([*approvers, *escalation]))
    if not recipients:
        raise InvalidApprovalRequest("the approval block names no approvers")
    timeout = approval.get(
        "timeout_seconds" if round_ == "request" else "escalation_timeout_seconds"
    )
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
        raise InvalidApprovalRequest(f"the {round_} round has no positive timeout in seconds")
    expires_at = int(now.timestamp()) + timeout
    summary = {"round": round_, "recipients": recipients, "expires_at": iso_z_at(expires_at)}
    certificate = decision.get("certificate") or {}
    console_url = console_url_for(execution)
    targets = approval.get("targets")
    targets = targets if isinstance(targets, int) and not isinstance(targets, bool) else None
    record_pk = REQUEST + digest(token)
    with _throttling():
        sealed = seal(kms, settings.token_key_arn, record_pk, token)
    request: dict[str, Any] = {
        "pk": record_pk,
        "kind": "request",
        TOKEN_FIELD: sealed,
        "execution": execution,
        "console_url": console_url,
        "round": round_,
        "certificate": {k: certificate.get(k) for k in ("arn", "domain", "serial", "not_after")},
        "profile": decision.get("profile"),
        "targets": targets,
        "summary": str(decision.get("summary") or ""),
        "approvers": recipients,
        "status": PENDING,
        "created_at": iso_z(now),
        "expires_at": expires_at,
        "purge_at": expires_at + RECORD_GRACE_SECONDS,
    }
    with _throttling():
        if not put_new(dynamodb, settings.table, request):
            earlier = get_record(dynamodb, settings.table, request["pk"]) or {}
            if earlier.get("notified"):
                return {**summary, "mailed": False}  # the same invocation again: sent before
        mail = pages.Mail(
            round=round_,
            domain=_text(certificate.get("domain")),
            arn=_text(certificate.get("arn")),
            serial=_text(certificate.get("serial")),
            not_after=_text(certificate.get("not_after")),
            profile=_text(decision.get("profile")),
            targets=targets,
            deadline=datetime.fromtimestamp(expires_at, UTC),
            execution=console_url or execution,
            reasons=tuple(str(r) for r in (decision.get("approval") or {}).get("reasons") or ()),
        )
        severity = str(decision.get("severity") or "INFO")
        sent = [
            _mail_once(
                dynamodb,
                sns,
                settings,
                key,
                request,
                mail,
                email,
                severity=severity,
                escalation_contact=email not in approvers,
                now=now,
            )
            for email in recipients
        ]
        set_fields(dynamodb, settings.table, request["pk"], {"notified": True})
    return {**summary, "mailed": any(sent)}


def _mail_once(
    dynamodb: DynamoDBClient,
    sns: SNSClient,
    settings: RequestSettings,
    key: bytes,
    request: Mapping[str, Any],
    mail: pages.Mail,
    email: str,
    *,
    severity: str,
    escalation_contact: bool,
    now: datetime,
) -> bool:
    """Mint and mail one recipient's link unless an earlier run of this round already did.

    A marker keyed by (task token digest, recipient) is claimed SENDING before the link is minted
    and set SENT once SNS took the mail. Step Functions retries the task only after an attempt
    ended, so a SENDING marker found here is an attempt whose publish failed or that died before
    confirming: the recipient is mailed again, with a fresh link. A second mail is possible only
    if an attempt died between SNS accepting and the confirm; a recipient is never skipped.
    True when this call mailed.
    """
    pk = MAILED + digest(f"{request['pk']}|{email}")
    marker = {
        "pk": pk,
        "kind": "mailed",
        "request": request["pk"],
        "status": SENDING,
        "claimed_at": iso_z(now),
        "purge_at": request["purge_at"],
    }
    if not put_new(dynamodb, settings.table, marker):
        earlier = get_record(dynamodb, settings.table, pk) or {}
        if earlier.get("status") == SENT:
            return False
    link = _new_link(dynamodb, settings, key, request, email, now)
    subject, body = pages.email(mail, link=link, escalation_contact=escalation_contact)
    message = sns_message(
        email,
        subject,
        body,
        severity=severity,
        event_kind=_EVENT_KINDS[mail.round],
        certificate_arn=mail.arn,
    )
    sns.publish(
        TopicArn=settings.topic_arn,
        Subject=message["subject"],
        Message=message["message"],
        MessageAttributes=message["attributes"],
    )
    set_fields(dynamodb, settings.table, pk, {"status": SENT, "sent_at": iso_z(now)})
    return True


def _new_link(
    dynamodb: DynamoDBClient,
    settings: RequestSettings,
    key: bytes,
    request: Mapping[str, Any],
    approver: str,
    now: datetime,
) -> str:
    """Store one approver's approval record; return the link, the only copy of its id."""
    approval_id = new_link_id(key, approver, request["expires_at"])
    record = {
        "pk": APPROVAL + digest(approval_id),
        "kind": "approval",
        "request": request["pk"],
        "approver": approver,
        "round": request["round"],
        "status": PENDING,
        "created_at": iso_z(now),
        "expires_at": request["expires_at"],
        "purge_at": request["expires_at"] + RECORD_GRACE_SECONDS,
    }
    if not put_new(dynamodb, settings.table, record):
        raise InvalidApprovalRequest("a fresh approval id collided with a stored one")
    return f"{settings.base_url}/approvals/{approval_id}"


def _request_payload(
    payload: Mapping[str, Any],
) -> tuple[str, str, str, Mapping[str, Any], Mapping[str, Any]]:
    token, execution = payload.get("token"), payload.get("execution")
    round_, decision = payload.get("round"), payload.get("decision")
    if not isinstance(token, str) or not token:
        raise InvalidApprovalRequest("the payload has no task token")
    if not isinstance(execution, str) or not execution:
        raise InvalidApprovalRequest("the payload has no execution ARN")
    if round_ not in _EVENT_KINDS:
        raise InvalidApprovalRequest("the payload's round must be 'request' or 'escalation'")
    if not isinstance(decision, Mapping) or not isinstance(decision.get("approval"), Mapping):
        raise InvalidApprovalRequest("the payload's decision has no approval block")
    return token, execution, str(round_), decision, decision["approval"]


def _emails(values: object) -> tuple[str, ...]:
    if not isinstance(values, list):
        return ()
    found = (normalize_email(value) for value in values if isinstance(value, str))
    return tuple(dict.fromkeys(email.lower() for email in found if email))


@contextmanager
def _throttling() -> Iterator[None]:
    """Throttled or unavailable AWS calls become the retryable ServiceThrottled."""
    try:
        yield
    except ClientError as error:
        if error_code(error) in _THROTTLED:
            raise ServiceThrottled(f"AWS answered {error_code(error)}") from None
        raise


def _text(value: object) -> str:
    return str(value) if value not in (None, "") else "unknown"
