"""A person's approval decision: the page a link opens (GET) and the decision it posts (POST).

A link resolves to its approval and request records only when its HMAC holds. GET only reads;
the page's CSRF-bound POST re-checks the approver against the profile as deployed now, decides
once (one conditional transaction: both records DECIDED, the stored token removed, an audit item
appended), then calls SendTaskSuccess or SendTaskFailure("ApprovalRejected"). Audit items are
only ever appended: a refusal, each attempt and each callback result is an item of its own.
"""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from botocore.exceptions import BotoCoreError, ClientError

from certrelay import approval_pages as pages
from certrelay.approval_links import ApiSettings, csrf_token, digest, link_is_genuine
from certrelay.approval_records import (
    APPROVAL,
    DECIDED,
    EXPIRED,
    PENDING,
    append_audit,
    audit_key,
    error_code,
    get_record,
    set_fields,
    to_db,
    update_params,
)
from certrelay.approval_tokens import TOKEN_FIELD, Kms, unseal
from certrelay.errors import ApprovalRejected
from certrelay.text import iso_z

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import PutTypeDef
    from mypy_boto3_stepfunctions import SFNClient

    from certrelay.approval_sso import Http

AUDIT_RETENTION = timedelta(days=400)
_GONE = frozenset({"TaskTimedOut", "TaskDoesNotExist"})
# Step Functions never issued the token: the record or its sealed token was altered
_NOT_ISSUED = "InvalidToken"
_MAX_BODY = 8192
_FIELDS = frozenset({"csrf", "decision", "reason"})  # the page's form has these and no other
_DONE = {"approve": "approved", "reject": "rejected"}
# The Answer outcomes that recorded a decision (the approval function counts them as metrics).
DECISION_OUTCOMES = frozenset(_DONE.values())
# The outcome of a token Step Functions refused as invalid: counted, and logged at ERROR.
NOT_ISSUED_OUTCOME = "invalid_token"
_PENDING = "#status = :pending"
_STILL_OPEN = "#status = :pending AND expires_at >= :now"

# (certificate ARN, round) -> who the certificate's profile names as deciders now
ApproversNow = Callable[[str, str], frozenset[str]]


@dataclass(frozen=True)
class Dependencies:
    """What the approval function reads once per container: settings, key, clients, profiles."""

    settings: ApiSettings
    key: bytes
    dynamodb: Any
    sfn: Any
    kms: Any
    approvers_now: ApproversNow
    http: Http


@dataclass(frozen=True)
class Visitor:
    """Who is at the page: address, browser, and the SSO email claim when SSO is on."""

    source_ip: str
    user_agent: str
    email: str | None = None


@dataclass(frozen=True)
class Answer:
    """An HTTP status, its page, a one-word outcome for the log; a redirect and cookies for SSO."""

    status: int
    page: str
    outcome: str
    location: str = ""
    cookies: tuple[tuple[str, str, int], ...] = ()  # (name, value, max-age seconds; 0 clears)


NOT_FOUND = Answer(404, pages.NOT_FOUND, "not_found")


def show(
    approval_id: str,
    *,
    dynamodb: DynamoDBClient,
    key: bytes,
    settings: ApiSettings,
    visitor: Visitor,
    now: datetime,
    others: Callable[[dict[str, Any]], int] | None = None,
) -> Answer:
    """GET: the confirmation page, or why there is none. Never writes anything.

    `others` counts the approver's other pending renewals (reads only), for a pointer to the
    batch page."""
    link = resolve_link(dynamodb, settings.table, key, approval_id)
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
        others=others(approval) if others is not None else 0,
    )
    return Answer(
        200, pages.confirmation(facts, _csrf(key, approval_id, settings, visitor)), "shown"
    )


def record_decision(
    approval_id: str,
    body: str,
    *,
    base64_encoded: bool,
    dynamodb: DynamoDBClient,
    sfn: SFNClient,
    kms: Kms,
    approvers_now: ApproversNow,
    key: bytes,
    settings: ApiSettings,
    visitor: Visitor,
    now: datetime,
) -> Answer:
    """POST: check link, CSRF, form, state and approver; decide once; tell the waiting workflow."""
    link = resolve_link(dynamodb, settings.table, key, approval_id)
    if link is None:
        return NOT_FOUND
    approval, request = link
    form = _form(body, base64_encoded)
    if form is None:
        return Answer(400, pages.bad_request(), "bad_body")
    sent = form.get("csrf", "").encode("utf-8", "replace")
    if not hmac.compare_digest(sent, _csrf(key, approval_id, settings, visitor).encode()):
        return Answer(403, pages.forbidden(), "csrf")
    blocked = _blocked(approval, request, settings, visitor, now)
    if blocked is not None:
        return blocked
    decision, reason = form.get("decision", ""), form.get("reason", "").strip()
    if decision not in {"approve", "reject"} or len(reason.encode()) > pages.MAX_REASON_BYTES:
        return Answer(400, pages.bad_request(), "bad_body")
    return decide_item(
        approval,
        request,
        decision,
        reason,
        dynamodb=dynamodb,
        sfn=sfn,
        kms=kms,
        approvers_now=approvers_now,
        settings=settings,
        visitor=visitor,
        now=now,
    )


def decide_item(
    approval: dict[str, Any],
    request: dict[str, Any],
    decision: str,
    reason: str,
    *,
    dynamodb: DynamoDBClient,
    sfn: SFNClient,
    kms: Kms,
    approvers_now: ApproversNow,
    settings: ApiSettings,
    visitor: Visitor,
    now: datetime,
    audit_extra: Mapping[str, str] | None = None,
) -> Answer:
    """Decide one approval whose link (or batch page) was checked: re-check the approver against
    the profile, record PENDING→DECIDED once, answer the waiting task. Every audit item it appends
    carries `audit_extra` (the batch page names itself and the link that opened it)."""
    extra = dict(audit_extra or {})
    blocked = _blocked(approval, request, settings, visitor, now)
    if blocked is not None:
        return blocked
    approver = visitor.email if settings.sso_enabled and visitor.email else approval["approver"]
    outcome = pages.Outcome(decision, approver.lower(), iso_z(now), reason)
    certificate_arn = _cert(request, "arn")
    if outcome.approver not in approvers_now(certificate_arn, str(approval["round"])):
        denied = _audit(settings, approval, request, outcome, visitor, now, event="denied")
        denied |= extra | {"denied_because": "not_in_profile"}
        append_audit(dynamodb, settings.table, denied)
        return Answer(403, pages.forbidden(no_longer=True), "not_in_profile")
    sealed = str(request.get(TOKEN_FIELD) or "")
    if not sealed:  # a PENDING request always holds its token; without one nobody waits
        return Answer(410, pages.gone(), "no_token")
    token = unseal(kms, settings.token_key_arn, request["pk"], sealed)
    try:
        attempt = _record(dynamodb, settings, approval, request, outcome, visitor, now, extra)
    except ClientError as error:
        if error_code(error) != "TransactionCanceledException":
            raise
        relook = _reread(dynamodb, settings.table, approval)
        if relook is None:
            return NOT_FOUND
        return _blocked(*relook, settings, visitor, now) or Answer(
            503, pages.unavailable(), "conflict"
        )
    return _callback(dynamodb, sfn, settings.table, token, attempt, approval, request, now)


def _reread(
    dynamodb: DynamoDBClient, table: str, approval: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """An approval and its request as stored now (after a lost race); None when either is gone."""
    again = get_record(dynamodb, table, str(approval["pk"]))
    request = get_record(dynamodb, table, str(again["request"])) if again else None
    return (again, request) if again and request else None


def resolve_link(
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
    extra: dict[str, str],
) -> dict[str, Any]:
    """One transaction: both records PENDING→DECIDED (conditional), the request's token removed,
    and a new audit item for this attempt. Returns that audit item."""
    table = settings.table
    decided = {
        "status": DECIDED,
        "decision": outcome.decision,
        "decided_by": outcome.approver,
        "decided_at": outcome.decided_at,
        "decision_reason": outcome.reason,
    }
    audit = {**_audit(settings, approval, request, outcome, visitor, now, event="decided"), **extra}
    conditional = {":pending": PENDING}
    both_pending = {**conditional, ":now": int(now.timestamp())}
    approval_update = update_params(table, approval["pk"], decided, _STILL_OPEN, both_pending)
    request_update = update_params(
        table,
        request["pk"],
        {**decided, "decided_via": approval["pk"]},
        _PENDING,
        conditional,
        remove=[TOKEN_FIELD],
    )
    audit_put: PutTypeDef = {
        "TableName": table,
        "Item": to_db(audit),
        "ConditionExpression": "attribute_not_exists(pk)",
    }
    dynamodb.transact_write_items(
        TransactItems=[{"Update": approval_update}, {"Update": request_update}, {"Put": audit_put}]
    )
    return audit


def _audit(
    settings: ApiSettings,
    approval: dict[str, Any],
    request: dict[str, Any],
    outcome: pages.Outcome,
    visitor: Visitor,
    now: datetime,
    *,
    event: str,
) -> dict[str, Any]:
    """A new audit item: who, what, why, when, from where, about which execution."""
    return {
        "pk": audit_key(approval["pk"], now),
        "kind": "audit",
        "event": event,
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
        "purge_at": int((now + AUDIT_RETENTION).timestamp()),  # the table's TTL attribute
    }


def _callback(
    dynamodb: DynamoDBClient,
    sfn: SFNClient,
    table: str,
    token: str,
    attempt: dict[str, Any],
    approval: dict[str, Any],
    request: dict[str, Any],
    now: datetime,
) -> Answer:
    """Tell the workflow; a vanished wait or an invalid token closes the records (EXPIRED), a
    refused call undoes. An invalid token is a 404: the page does not tell why.

    Each result is appended as an audit item of its own, naming the attempt it answers.
    """
    outcome = _outcome_of(attempt)
    facts = {name: value for name, value in asdict(outcome).items() if name != "decision"}

    def result(callback: str, callback_error: str = "") -> None:
        item = {
            **attempt,
            "pk": attempt["pk"] + "#callback",  # one result per attempt, sorted right after it
            "event": "callback",
            "recorded_at": iso_z(now),
            "attempt": attempt["pk"],
            "callback": callback,
        }
        if callback_error:
            item["callback_error"] = callback_error
        append_audit(dynamodb, table, item)

    try:
        if outcome.decision == "approve":
            output = json.dumps({"decision": "approve", **facts})
            sfn.send_task_success(taskToken=token, output=output)
        else:
            sfn.send_task_failure(
                taskToken=token, error=ApprovalRejected.__name__, cause=json.dumps(facts)
            )
    except ClientError as error:
        code = error_code(error)
        if code not in _GONE | {_NOT_ISSUED}:
            result("FAILED", code)
            return _undo(dynamodb, table, approval, request)
        for pk in (approval["pk"], request["pk"]):
            set_fields(dynamodb, table, pk, {"status": EXPIRED})
        result(EXPIRED, code)
        if code == _NOT_ISSUED:  # no retry can fix it: closed, and the operator alerted
            return Answer(404, pages.NOT_FOUND, NOT_ISSUED_OUTCOME)
        return Answer(410, pages.gone(recorded=True), "callback_gone")
    except BotoCoreError as error:
        # The call may have reached Step Functions before the connection failed: reopening the
        # records could let a second approver contradict a workflow already acting on this one.
        # Keep the decision; if it never arrived, the wait times out into the escalation round,
        # which asks again with a new task.
        result("UNCONFIRMED", type(error).__name__)
        return Answer(503, pages.unavailable(), "callback_unconfirmed")
    result("DELIVERED")
    return Answer(200, pages.thanks(outcome), _DONE[outcome.decision])


def _undo(
    dynamodb: DynamoDBClient, table: str, approval: dict[str, Any], request: dict[str, Any]
) -> Answer:
    """The workflow was not told: reopen both records (the token back) so the approver can retry."""
    set_fields(dynamodb, table, approval["pk"], {"status": PENDING})
    reopened = {"status": PENDING, TOKEN_FIELD: request[TOKEN_FIELD]}
    set_fields(dynamodb, table, request["pk"], reopened)
    return Answer(503, pages.unavailable(), "callback_failed")


def _outcome_of(audit: Mapping[str, Any]) -> pages.Outcome:
    return pages.Outcome(audit["decision"], audit["approver"], audit["decided_at"], audit["reason"])


def _outcome(request: Mapping[str, Any]) -> pages.Outcome:
    return pages.Outcome(
        decision=str(request.get("decision", "")),
        approver=str(request.get("decided_by", "")),
        decided_at=str(request.get("decided_at", "")),
        reason=str(request.get("decision_reason", "")),
    )


def _form(body: str, base64_encoded: bool) -> dict[str, str] | None:
    """The urlencoded form, one value per field, no field the page does not post; else None."""
    try:
        raw = base64.b64decode(body, validate=True) if base64_encoded else body.encode()
        if len(raw) > _MAX_BODY:
            return None
        fields = parse_qs(raw.decode(), keep_blank_values=True, max_num_fields=8, errors="strict")
    except (ValueError, UnicodeError):
        return None
    if any(len(values) != 1 for values in fields.values()) or not fields.keys() <= _FIELDS:
        return None
    return {name: values[0] for name, values in fields.items()}


def _csrf(key: bytes, approval_id: str, settings: ApiSettings, visitor: Visitor) -> str:
    """The form's CSRF token: bound to the link, and with SSO to the signed-in session too."""
    session = (visitor.email or "").lower() if settings.sso_enabled else ""
    return csrf_token(key, approval_id, session)


def _cert(request: Mapping[str, Any], field: str) -> str:
    return str((request.get("certificate") or {}).get(field) or "unknown")
