"""The decision side of approval: the page a link opens (GET) and the decision it posts (POST).

A link resolves to its approval and request records only when its HMAC holds. GET only reads;
the page's CSRF-bound POST decides once (one conditional transaction, audit included), then calls
SendTaskSuccess or SendTaskFailure("ApprovalRejected").
"""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from botocore.exceptions import BotoCoreError, ClientError

from certrelay import approval_pages as pages
from certrelay.approval_links import ApiSettings, csrf_token, digest, link_is_genuine
from certrelay.approval_records import (
    APPROVAL,
    AUDIT,
    DECIDED,
    EXPIRED,
    PENDING,
    error_code,
    get_record,
    iso,
    set_fields,
    to_db,
    update_params,
)
from certrelay.errors import ApprovalRejected

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import PutTypeDef
    from mypy_boto3_stepfunctions import SFNClient

AUDIT_RETENTION = timedelta(days=400)
_GONE = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})
_MAX_BODY = 8192
_DONE = {"approve": "approved", "reject": "rejected"}
# The Answer outcomes that recorded a decision (the approval function counts them as metrics).
DECISION_OUTCOMES = frozenset(_DONE.values())
_PENDING = "#status = :pending"
_STILL_OPEN = "#status = :pending AND expires_at >= :now"


@dataclass(frozen=True)
class Visitor:
    """Who is at the page: address, browser, and the SSO email claim when SSO is on."""

    source_ip: str
    user_agent: str
    email: str | None = None


@dataclass(frozen=True)
class Answer:
    """An HTTP status, its page, and a one-word outcome for the log."""

    status: int
    page: str
    outcome: str


NOT_FOUND = Answer(404, pages.NOT_FOUND, "not_found")


def show(
    approval_id: str,
    *,
    dynamodb: DynamoDBClient,
    key: bytes,
    settings: ApiSettings,
    visitor: Visitor,
    now: datetime,
) -> Answer:
    """GET: the confirmation page, or why there is none. Never writes anything."""
    link = _resolve(dynamodb, settings.table, key, approval_id)
    if link is None:
        return NOT_FOUND
    approval, request = link
    blocked = _blocked(approval, request, settings, visitor, now)
    if blocked is not None:
        return blocked
    facts = pages.Facts(
        approval_id=approval_id,
        approver=approval["approver"],
        round=approval["round"],
        domain=_cert(request, "domain"),
        arn=_cert(request, "arn"),
        serial=_cert(request, "serial"),
        not_after=_cert(request, "not_after"),
        profile=str(request.get("profile") or "unknown"),
        targets=None if request.get("targets") is None else int(request["targets"]),
        summary=str(request.get("summary") or ""),
        deadline=datetime.fromtimestamp(int(approval["expires_at"]), UTC),
        execution=request["execution"],
        console_url=str(request.get("console_url") or ""),
        signed_in=visitor.email if settings.sso_enabled else None,
    )
    return Answer(200, pages.confirmation(facts, csrf_token(key, approval_id)), "shown")


def decide(
    approval_id: str,
    body: str,
    *,
    base64_encoded: bool,
    dynamodb: DynamoDBClient,
    sfn: SFNClient,
    key: bytes,
    settings: ApiSettings,
    visitor: Visitor,
    now: datetime,
) -> Answer:
    """POST: check link, CSRF, form and state; decide once; then tell the waiting workflow."""
    link = _resolve(dynamodb, settings.table, key, approval_id)
    if link is None:
        return NOT_FOUND
    approval, request = link
    form = _form(body, base64_encoded)
    if form is None:
        return Answer(400, pages.bad_request(), "bad_body")
    sent = form.get("csrf", "").encode("utf-8", "replace")
    if not hmac.compare_digest(sent, csrf_token(key, approval_id).encode()):
        return Answer(403, pages.forbidden(), "csrf")
    blocked = _blocked(approval, request, settings, visitor, now)
    if blocked is not None:
        return blocked
    decision, reason = form.get("decision", ""), form.get("reason", "").strip()
    if decision not in {"approve", "reject"} or len(reason.encode()) > pages.MAX_REASON_BYTES:
        return Answer(400, pages.bad_request(), "bad_body")
    approver = visitor.email if settings.sso_enabled and visitor.email else approval["approver"]
    outcome = pages.Outcome(decision, approver.lower(), iso(now), reason)
    try:
        _record(dynamodb, settings, approval, request, outcome, visitor, now)
    except ClientError as error:
        if error_code(error) != "TransactionCanceledException":
            raise
        relook = _resolve(dynamodb, settings.table, key, approval_id)
        if relook is None:
            return NOT_FOUND
        return _blocked(*relook, settings, visitor, now) or Answer(
            503, pages.unavailable(), "conflict"
        )
    return _callback(dynamodb, sfn, settings.table, approval, request, outcome)


def _resolve(
    dynamodb: DynamoDBClient, table: str, key: bytes, approval_id: str
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The approval and request records behind a genuine link; None for every kind of bad link.

    The lookup and the HMAC check run for every id, so bad ids cannot be told apart.
    """
    approval = get_record(dynamodb, table, APPROVAL + digest(approval_id))
    approver = str(approval.get("approver", "")) if approval else ""
    expires_at = int(approval.get("expires_at", 0)) if approval else 0
    genuine = link_is_genuine(key, approval_id, approver, expires_at)
    if not (genuine and approval):
        return None
    request = get_record(dynamodb, table, str(approval["request"]))
    return (approval, request) if request else None


def _blocked(
    approval: dict[str, Any],
    request: dict[str, Any],
    settings: ApiSettings,
    visitor: Visitor,
    now: datetime,
) -> Answer | None:
    """403 for the wrong signed-in person, 409 once decided, 410 once expired; else None."""
    if settings.sso_enabled:
        email = (visitor.email or "").lower()
        approvers = {str(a).lower() for a in request.get("approvers", [])}
        if email != str(approval["approver"]).lower() or email not in approvers:
            return Answer(403, pages.forbidden(visitor.email or ""), "not_approver")
    if request.get("status") == DECIDED:
        return Answer(409, pages.already_decided(_outcome(request)), "already_decided")
    expired = int(now.timestamp()) > int(approval["expires_at"])
    if expired or EXPIRED in {approval.get("status"), request.get("status")}:
        return Answer(410, pages.gone(), "expired")
    return None


def _record(
    dynamodb: DynamoDBClient,
    settings: ApiSettings,
    approval: dict[str, Any],
    request: dict[str, Any],
    outcome: pages.Outcome,
    visitor: Visitor,
    now: datetime,
) -> None:
    """One transaction: both records PENDING→DECIDED (conditional) and the audit item."""
    table = settings.table
    decided = {
        "status": DECIDED,
        "decision": outcome.decision,
        "decided_by": outcome.approver,
        "decided_at": outcome.decided_at,
        "decision_reason": outcome.reason,
    }
    audit = {
        "pk": AUDIT + approval["pk"].removeprefix(APPROVAL),
        "kind": "audit",
        "approval": approval["pk"],
        "request": request["pk"],
        "round": approval["round"],
        "approver": outcome.approver,
        "authenticated_by": "sso" if settings.sso_enabled else "link",
        "decision": outcome.decision,
        "reason": outcome.reason,
        "decided_at": outcome.decided_at,
        "source_ip": visitor.source_ip[:64],
        "user_agent": visitor.user_agent[:512],
        "execution": request["execution"],
        "certificate": request.get("certificate", {}),
        "callback": "PENDING",
        "purge_at": int((now + AUDIT_RETENTION).timestamp()),  # the table's TTL attribute
    }
    conditional = {":pending": PENDING}
    both_pending = {**conditional, ":now": int(now.timestamp())}
    approval_update = update_params(table, approval["pk"], decided, _STILL_OPEN, both_pending)
    request_update = update_params(
        table, request["pk"], {**decided, "decided_via": approval["pk"]}, _PENDING, conditional
    )
    audit_put: PutTypeDef = {
        "TableName": table,
        "Item": to_db(audit),
        "ConditionExpression": "attribute_not_exists(pk) OR #callback = :failed",
        "ExpressionAttributeNames": {"#callback": "callback"},
        "ExpressionAttributeValues": to_db({":failed": "FAILED"}),
    }
    dynamodb.transact_write_items(
        TransactItems=[{"Update": approval_update}, {"Update": request_update}, {"Put": audit_put}]
    )


def _callback(
    dynamodb: DynamoDBClient,
    sfn: SFNClient,
    table: str,
    approval: dict[str, Any],
    request: dict[str, Any],
    outcome: pages.Outcome,
) -> Answer:
    """Tell the workflow; a vanished wait marks the records EXPIRED; a refused call undoes."""
    audit_pk = AUDIT + approval["pk"].removeprefix(APPROVAL)
    facts = {name: value for name, value in asdict(outcome).items() if name != "decision"}
    try:
        if outcome.decision == "approve":
            output = json.dumps({"decision": "approve", **facts})
            sfn.send_task_success(taskToken=request["token"], output=output)
        else:
            sfn.send_task_failure(
                taskToken=request["token"],
                error=ApprovalRejected.__name__,
                cause=json.dumps(facts),
            )
    except ClientError as error:
        if error_code(error) not in _GONE:
            return _undo(dynamodb, table, approval, request, audit_pk, error_code(error))
        for pk in (approval["pk"], request["pk"]):
            set_fields(dynamodb, table, pk, {"status": EXPIRED})
        set_fields(
            dynamodb, table, audit_pk, {"callback": EXPIRED, "callback_error": error_code(error)}
        )
        return Answer(410, pages.gone(recorded=True), "callback_gone")
    except BotoCoreError as error:
        # The call may have reached Step Functions before the connection failed: reopening the
        # records could let a second approver contradict a workflow already acting on this one.
        # Keep the decision; if it never arrived, the wait times out into the escalation round,
        # which asks again with a new task.
        set_fields(
            dynamodb,
            table,
            audit_pk,
            {"callback": "UNCONFIRMED", "callback_error": type(error).__name__},
        )
        return Answer(503, pages.unavailable(), "callback_unconfirmed")
    set_fields(dynamodb, table, audit_pk, {"callback": "DELIVERED"})
    return Answer(200, pages.thanks(outcome), _DONE[outcome.decision])


def _undo(
    dynamodb: DynamoDBClient,
    table: str,
    approval: dict[str, Any],
    request: dict[str, Any],
    audit_pk: str,
    code: str,
) -> Answer:
    """The workflow was not told: reopen both records so the approver can try again."""
    set_fields(dynamodb, table, audit_pk, {"callback": "FAILED", "callback_error": code})
    for pk in (approval["pk"], request["pk"]):
        set_fields(dynamodb, table, pk, {"status": PENDING})
    return Answer(503, pages.unavailable(), "callback_failed")


def _outcome(request: Mapping[str, Any]) -> pages.Outcome:
    return pages.Outcome(
        decision=str(request.get("decision", "")),
        approver=str(request.get("decided_by", "")),
        decided_at=str(request.get("decided_at", "")),
        reason=str(request.get("decision_reason", "")),
    )


def _form(body: str, base64_encoded: bool) -> dict[str, str] | None:
    """The urlencoded form, one value per field; None when it cannot be one."""
    try:
        raw = base64.b64decode(body, validate=True) if base64_encoded else body.encode()
        if len(raw) > _MAX_BODY:
            return None
        fields = parse_qs(raw.decode(), keep_blank_values=True, max_num_fields=8, errors="strict")
    except (ValueError, UnicodeError):
        return None
    if any(len(values) != 1 for values in fields.values()):
        return None
    return {name: values[0] for name, values in fields.items()}


def _cert(request: Mapping[str, Any], field: str) -> str:
    return str((request.get("certificate") or {}).get(field) or "unknown")
