"""Human approval of a distribution: ask each approver by email, decide on a confirmation page.

The task token never leaves AWS: it sits in the request record. A link carries a random id bound
to its approver and deadline by an HMAC; only the id's SHA-256 is stored. GET only reads; the
page's CSRF-bound POST decides once (one conditional transaction, audit included), then calls
SendTaskSuccess or SendTaskFailure("ApprovalRejected").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from certrelay import approval_pages as pages
from certrelay.errors import (
    ApprovalRejected,
    ConfigurationError,
    InvalidApprovalRequest,
    ServiceThrottled,
)
from certrelay.notifications import console_url_for
from certrelay.owners import normalize_email

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import PutTypeDef
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef
    from mypy_boto3_stepfunctions import SFNClient

REQUEST, APPROVAL, AUDIT = "request#", "approval#", "audit#"  # partition key prefixes
PENDING, DECIDED, EXPIRED = "PENDING", "DECIDED", "EXPIRED"
AUDIT_RETENTION = timedelta(days=400)
MIN_KEY_CHARS = 32
_ID = re.compile(r"^[A-Za-z0-9_-]{32}\.[A-Za-z0-9_-]{22}$")  # token_urlsafe(24) "." mac[:22]
_GONE = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})
_MAX_BODY = 8192
_DONE = {"approve": "approved", "reject": "rejected"}
_EVENT_KINDS = {"request": "ApprovalRequested", "escalation": "ApprovalEscalated"}
_THROTTLED = frozenset(
    {"ThrottlingException", "Throttling", "ProvisionedThroughputExceededException"}
    | {"RequestLimitExceeded", "InternalServerError", "InternalError", "ServiceUnavailable"}
)
_BASE_URL = re.compile(
    r"^(https://[A-Za-z0-9.-]+(:\d+)?|http://(localhost|127\.0\.0\.1)(:\d+)?)(/[A-Za-z0-9._~/-]*)?$"
)
_PENDING = "#status = :pending"
_STILL_OPEN = "#status = :pending AND expires_at >= :now"
_TO_DB, _FROM_DB = TypeSerializer(), TypeDeserializer()


class SecretReader(Protocol):
    """The one Secrets Manager call certrelay makes."""

    def get_secret_value(self, *, SecretId: str) -> Mapping[str, Any]: ...


def load_key(secrets_client: SecretReader, secret_arn: str) -> bytes:
    """The HMAC key: the secret's SecretString, at least MIN_KEY_CHARS characters."""
    value = str(secrets_client.get_secret_value(SecretId=secret_arn).get("SecretString") or "")
    if len(value) < MIN_KEY_CHARS:
        raise ConfigurationError(
            f"the approval key secret must hold at least {MIN_KEY_CHARS} characters"
        )
    return value.encode()


@dataclass(frozen=True)
class ApiSettings:
    """What the approval API needs: its table, its key, and whether SSO names the approver."""

    table: str
    key_secret_arn: str
    sso_enabled: bool

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ApiSettings:
        sso = environ.get("SSO_ENABLED", "false").strip().lower()
        if sso not in {"true", "false"}:
            raise ConfigurationError(f"SSO_ENABLED {sso!r} must be 'true' or 'false'")
        return cls(
            table=required(environ, "APPROVAL_TABLE_NAME"),
            key_secret_arn=required(environ, "APPROVAL_KEY_SECRET_ARN"),
            sso_enabled=sso == "true",
        )


def required(environ: Mapping[str, str], name: str) -> str:
    """One environment setting that must be present."""
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name} is not set")
    return value


def new_link_id(key: bytes, approver: str, expires_at: int) -> str:
    """192 random bits, then an HMAC binding them to the approver and the deadline."""
    random_part = secrets.token_urlsafe(24)
    return f"{random_part}.{_mac(key, f'{random_part}|{approver}|{expires_at}')[:22]}"


def csrf_token(key: bytes, approval_id: str) -> str:
    """Stateless CSRF token for the page's form, bound to its link."""
    return _mac(key, f"csrf|{approval_id}")


def digest(text: str) -> str:
    """Hex SHA-256: the only form in which task tokens and link ids become table keys."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class RequestSettings:
    """What "Request Approval" needs: its table, where links point, the topic, the key."""

    table: str
    base_url: str
    topic_arn: str
    key_secret_arn: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RequestSettings:
        base_url = required(environ, "APPROVAL_BASE_URL").rstrip("/")
        if not _BASE_URL.match(base_url):
            raise ConfigurationError(
                f"APPROVAL_BASE_URL {base_url!r} must be an https:// URL without query or fragment"
            )
        return cls(
            table=required(environ, "APPROVAL_TABLE_NAME"),
            base_url=base_url,
            topic_arn=required(environ, "NOTIFICATION_TOPIC_ARN"),
            key_secret_arn=required(environ, "APPROVAL_KEY_SECRET_ARN"),
        )


def request_approval(
    payload: Mapping[str, Any],
    *,
    dynamodb: DynamoDBClient,
    sns: SNSClient,
    key: bytes,
    settings: RequestSettings,
    now: datetime,
) -> dict[str, Any]:
    """Store the token and one link per recipient, mail each their link; return no secrets."""
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
    summary = {"round": round_, "recipients": recipients, "expires_at": _iso_at(expires_at)}
    certificate = decision.get("certificate") or {}
    console_url = console_url_for(execution)
    targets = approval.get("targets")
    targets = targets if isinstance(targets, int) and not isinstance(targets, bool) else None
    request: dict[str, Any] = {
        "pk": REQUEST + digest(token),
        "kind": "request",
        "token": token,
        "execution": execution,
        "console_url": console_url,
        "round": round_,
        "certificate": {k: certificate.get(k) for k in ("arn", "domain", "serial", "not_after")},
        "profile": decision.get("profile"),
        "targets": targets,
        "summary": str(decision.get("summary") or ""),
        "approvers": recipients,
        "status": PENDING,
        "created_at": _iso(now),
        "expires_at": expires_at,
    }
    with _throttling():
        if not _put_new(dynamodb, settings.table, request):
            earlier = _get(dynamodb, settings.table, request["pk"]) or {}
            if earlier.get("notified"):
                return summary  # the same invocation again: its mails went out already
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
        )
        attributes = {
            "severity": _attribute(str(decision.get("severity") or "INFO")),
            "event_kind": _attribute(_EVENT_KINDS[round_]),
            "certificate": _attribute(mail.arn),
        }
        for email in recipients:
            link = _new_link(dynamodb, settings, key, request, email, now)
            subject, body = pages.email(mail, link=link, escalation_contact=email not in approvers)
            sns.publish(
                TopicArn=settings.topic_arn,
                Subject=subject,
                Message=body,
                MessageAttributes={"recipient": _attribute(email), **attributes},
            )
        _set(dynamodb, settings.table, request["pk"], {"notified": True})
    return summary


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
        "created_at": _iso(now),
        "expires_at": request["expires_at"],
    }
    if not _put_new(dynamodb, settings.table, record):
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


def _put_new(dynamodb: DynamoDBClient, table: str, item: Mapping[str, Any]) -> bool:
    """Put an item that must not exist yet; False when it already does."""
    try:
        dynamodb.put_item(
            TableName=table, Item=_to_db(item), ConditionExpression="attribute_not_exists(pk)"
        )
    except ClientError as error:
        if _code(error) == "ConditionalCheckFailedException":
            return False
        raise
    return True


@contextmanager
def _throttling() -> Iterator[None]:
    """Throttled or unavailable AWS calls become the retryable ServiceThrottled."""
    try:
        yield
    except ClientError as error:
        if _code(error) in _THROTTLED:
            raise ServiceThrottled(f"AWS answered {_code(error)}") from None
        raise


def _attribute(value: str) -> MessageAttributeValueTypeDef:
    return {"DataType": "String", "StringValue": value or "unknown"}


def _text(value: object) -> str:
    return str(value) if value not in (None, "") else "unknown"


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
    if not hmac.compare_digest(form.get("csrf", ""), csrf_token(key, approval_id)):
        return Answer(403, pages.forbidden(), "csrf")
    blocked = _blocked(approval, request, settings, visitor, now)
    if blocked is not None:
        return blocked
    decision, reason = form.get("decision", ""), form.get("reason", "").strip()
    if decision not in {"approve", "reject"} or len(reason.encode()) > pages.MAX_REASON_BYTES:
        return Answer(400, pages.bad_request(), "bad_body")
    approver = visitor.email if settings.sso_enabled and visitor.email else approval["approver"]
    outcome = pages.Outcome(decision, approver.lower(), _iso(now), reason)
    try:
        _record(dynamodb, settings, approval, request, outcome, visitor, now)
    except ClientError as error:
        if _code(error) != "TransactionCanceledException":
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
    well_formed = _ID.fullmatch(approval_id) is not None
    approval = _get(dynamodb, table, APPROVAL + digest(approval_id))
    random_part, _, given = approval_id.rpartition(".")
    approver = str(approval.get("approver", "")) if approval else ""
    expires_at = int(approval.get("expires_at", 0)) if approval else 0
    expected = _mac(key, f"{random_part}|{approver}|{expires_at}")[:22]
    genuine = hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))
    if not (well_formed and genuine and approval):
        return None
    request = _get(dynamodb, table, str(approval["request"]))
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
        "expires_at": int((now + AUDIT_RETENTION).timestamp()),
    }
    conditional = {":pending": PENDING}
    both_pending = {**conditional, ":now": int(now.timestamp())}
    approval_update = _update(table, approval["pk"], decided, _STILL_OPEN, both_pending)
    request_update = _update(
        table, request["pk"], {**decided, "decided_via": approval["pk"]}, _PENDING, conditional
    )
    audit_put: PutTypeDef = {
        "TableName": table,
        "Item": _to_db(audit),
        "ConditionExpression": "attribute_not_exists(pk) OR #callback = :failed",
        "ExpressionAttributeNames": {"#callback": "callback"},
        "ExpressionAttributeValues": _to_db({":failed": "FAILED"}),
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
    """Tell the workflow; a vanished wait marks the records EXPIRED, any other failure undoes."""
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
        if _code(error) not in _GONE:
            return _undo(dynamodb, table, approval, request, audit_pk, _code(error))
        for pk in (approval["pk"], request["pk"]):
            _set(dynamodb, table, pk, {"status": EXPIRED})
        _set(dynamodb, table, audit_pk, {"callback": EXPIRED, "callback_error": _code(error)})
        return Answer(410, pages.gone(recorded=True), "callback_gone")
    except BotoCoreError as error:
        return _undo(dynamodb, table, approval, request, audit_pk, type(error).__name__)
    _set(dynamodb, table, audit_pk, {"callback": "DELIVERED"})
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
    _set(dynamodb, table, audit_pk, {"callback": "FAILED", "callback_error": code})
    for pk in (approval["pk"], request["pk"]):
        _set(dynamodb, table, pk, {"status": PENDING})
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


def _get(dynamodb: DynamoDBClient, table: str, pk: str) -> dict[str, Any] | None:
    item = dynamodb.get_item(TableName=table, Key={"pk": {"S": pk}}, ConsistentRead=True)
    found = item.get("Item")
    return {k: _FROM_DB.deserialize(v) for k, v in found.items()} if found else None


def _set(dynamodb: DynamoDBClient, table: str, pk: str, values: Mapping[str, Any]) -> None:
    """Best-effort bookkeeping on an existing record (TTL may have removed it)."""
    try:
        dynamodb.update_item(**_update(table, pk, values, "attribute_exists(pk)", {}))
    except ClientError as error:
        if _code(error) != "ConditionalCheckFailedException":
            raise


def _update(
    table: str, pk: str, values: Mapping[str, Any], condition: str, extra: Mapping[str, Any]
) -> Any:
    """UpdateItem parameters: SET every value, under `condition` (which may use #status)."""
    names = {f"#a{i}": name for i, name in enumerate(values)}
    if "#status" in condition:
        names["#status"] = "status"
    placeholders = {f":v{i}": value for i, value in enumerate(values.values())}
    return {
        "TableName": table,
        "Key": {"pk": {"S": pk}},
        "UpdateExpression": "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values))),
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": _to_db({**placeholders, **extra}),
    }


def _to_db(values: Mapping[str, Any]) -> Any:
    return {name: _TO_DB.serialize(value) for name, value in values.items()}


def _mac(key: bytes, text: str) -> str:
    mac = hmac.new(key, text.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _iso_at(epoch: int) -> str:
    return _iso(datetime.fromtimestamp(epoch, UTC))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
