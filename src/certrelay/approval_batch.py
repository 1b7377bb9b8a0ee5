"""Batch approval: one page listing an approver's pending renewals, one POST deciding a selection.

Any genuine link of an approver opens `/approvals/<id>/batch` until that link's own deadline,
even once its own renewal was decided, so the approver can come back for the rest. The link
proves the approver (its HMAC binds the id to the approver and deadline); with SSO on, the
signed-in email must be that approver too. The page lists, from the table's approver index, the
approval records bound to that same approver that are PENDING, unexpired and whose request still
waits, each re-read consistently first. It names each by its record digest (sha256 of its link
id, the table key): not a credential, since a batch POST is taken only under a genuine link with
the batch page's own CSRF token.

GET only reads. The POST names 1..MAX_ITEMS renewals and one decision; each is re-validated (its
record, its approver, pending, unexpired) and decided on its own by approval_decisions.decide_item:
its own conditional PENDING→DECIDED, its own audit items, its own SendTaskSuccess or
SendTaskFailure. One that fails does not stop the others; the answer says what happened to each.
"""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from botocore.exceptions import BotoCoreError, ClientError

from certrelay import approval_pages as pages
from certrelay.approval_decisions import (
    NOT_FOUND,
    Answer,
    ApproversNow,
    Visitor,
    decide_item,
    resolve_link,
)
from certrelay.approval_links import ApiSettings, batch_csrf_token
from certrelay.approval_records import APPROVAL, DECIDED, EXPIRED, PENDING, get_record
from certrelay.approval_records import open_approvals as index_query

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_stepfunctions import SFNClient

    from certrelay.approval_tokens import Kms

MAX_ITEMS = 50  # renewals listed on one page, and decided by one POST
_MAX_BODY = 16384
_SINGLE = frozenset({"csrf", "decision", "reason"})  # once each; "item" once per ticked renewal
_REF = re.compile(r"^[0-9a-f]{64}$")

# An item's outcome (approval_decisions.Answer.outcome) -> (result word, decided?, detail)
_RESULTS: dict[str, tuple[str, bool, str]] = {
    "approved": ("Approved", True, "The workflow goes on to distribute it."),
    "rejected": ("Rejected", True, "It will not be distributed; the owners are told."),
    "already_decided": ("Already decided", False, "Nothing was changed."),
    "expired": ("Expired", False, "The deadline passed; nothing was changed."),
    "no_token": ("Expired", False, "Nothing waits for this decision; nothing was changed."),
    "callback_gone": (
        "Too late",
        False,
        "Recorded, but the workflow had stopped waiting, so it changed nothing.",
    ),
    "not_in_profile": (
        "Not allowed",
        False,
        "The certificate's profile no longer names you; the refusal was recorded.",
    ),
    "not_approver": ("Not allowed", False, "This renewal was sent to someone else."),
    "not_found": ("Not found", False, "Not one of your pending renewals; nothing was changed."),
    "invalid_token": ("Not found", False, "The request is no longer valid; it was closed."),
    "callback_unconfirmed": (
        "Unconfirmed",
        False,
        "Recorded, but the workflow's answer was lost; if it did not arrive, you will be "
        "asked again.",
    ),
}
_RETRY = ("Not decided", False, "Something failed on our side; try this one again.")


@dataclass(frozen=True)
class Pending:
    """One renewal the approver may decide: its approval record and the request behind it."""

    approval: dict[str, Any]
    request: dict[str, Any]

    @property
    def ref(self) -> str:
        return str(self.approval["pk"]).removeprefix(APPROVAL)


def pending_for(
    dynamodb: DynamoDBClient, table: str, approver: str, now: datetime
) -> list[Pending]:
    """The approver's renewals still waiting for a decision, soonest deadline first, one per
    request, each re-read consistently and kept only if it is theirs, PENDING and unexpired."""
    found: dict[str, Pending] = {}
    # Twice the page's rows: records of requests a co-approver decided stay PENDING in the index
    # until their deadline, and are dropped here.
    for hit in index_query(dynamodb, table, approver, now, limit=2 * MAX_ITEMS):
        approval = get_record(dynamodb, table, str(hit["pk"]))
        request = get_record(dynamodb, table, str(approval["request"])) if approval else None
        if approval and request and _still_open(approval, request, approver, now):
            found.setdefault(str(request["pk"]), Pending(approval, request))
    return sorted(found.values(), key=lambda item: int(item.approval["expires_at"]))[:MAX_ITEMS]


def others_waiting(
    dynamodb: DynamoDBClient, table: str, approval: dict[str, Any], now: datetime
) -> int:
    """How many other renewals wait for this link's approver (for the single page's pointer)."""
    mine = str(approval["request"])
    items = pending_for(dynamodb, table, str(approval["approver"]), now)
    return sum(1 for item in items if str(item.request["pk"]) != mine)


def show(
    approval_id: str,
    *,
    dynamodb: DynamoDBClient,
    key: bytes,
    settings: ApiSettings,
    visitor: Visitor,
    now: datetime,
) -> Answer:
    """GET: the batch page for the link's approver, or why there is none. Never writes anything."""
    link = resolve_link(dynamodb, settings.table, key, approval_id)
    if link is None:
        return NOT_FOUND
    approval, _ = link
    refused = _refused(approval, settings, visitor, now)
    if refused is not None:
        return refused
    rows = [
        pages.BatchRow(
            ref=item.ref,
            domain=_cert(item.request, "domain"),
            serial=_cert(item.request, "serial"),
            not_after=_cert(item.request, "not_after"),
            profile=str(item.request.get("profile") or "unknown"),
            targets=None if item.request.get("targets") is None else int(item.request["targets"]),
            round=str(item.approval["round"]),
            deadline=datetime.fromtimestamp(int(item.approval["expires_at"]), UTC),
            this_link=item.approval["pk"] == approval["pk"],
        )
        for item in pending_for(dynamodb, settings.table, str(approval["approver"]), now)
    ]
    signed_in = visitor.email if settings.sso_enabled else None
    page = pages.batch(
        str(approval["approver"]),
        rows,
        _csrf(key, approval_id, settings, visitor),
        signed_in=signed_in,
    )
    return Answer(200, page, "batch_shown")


def decide_selection(
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
) -> tuple[Answer, list[str]]:
    """POST: check link, CSRF and form, then decide each ticked renewal on its own.

    Returns the answer and each item's outcome (for the metrics), in the order ticked.
    """
    link = resolve_link(dynamodb, settings.table, key, approval_id)
    if link is None:
        return NOT_FOUND, []
    opener, _ = link
    form = _form(body, base64_encoded)
    if form is None:
        return Answer(400, pages.bad_batch(MAX_ITEMS), "bad_body"), []
    sent = form["csrf"][0].encode("utf-8", "replace") if "csrf" in form else b""
    if not hmac.compare_digest(sent, _csrf(key, approval_id, settings, visitor).encode()):
        return Answer(403, pages.forbidden(), "csrf"), []
    refused = _refused(opener, settings, visitor, now)
    if refused is not None:
        return refused, []
    decision, reason = _single(form, "decision"), _single(form, "reason").strip()
    refs = form.get("item", [])
    well_formed = all(_REF.fullmatch(ref) for ref in refs) and len(set(refs)) == len(refs)
    if (
        decision not in {"approve", "reject"}
        or len(reason.encode()) > pages.MAX_REASON_BYTES
        or not 1 <= len(refs) <= MAX_ITEMS
        or not well_formed
    ):
        return Answer(400, pages.bad_batch(MAX_ITEMS), "bad_body"), []
    extra = {"via": "batch", "opened_with": str(opener["pk"])}

    def one(item: Pending) -> str:
        try:
            return decide_item(
                item.approval,
                item.request,
                decision,
                reason,
                dynamodb=dynamodb,
                sfn=sfn,
                kms=kms,
                approvers_now=approvers_now,
                settings=settings,
                visitor=visitor,
                now=now,
                audit_extra=extra,
            ).outcome
        except (ClientError, BotoCoreError):  # this one failed; the others still go ahead
            return "error"

    results: list[pages.BatchResult] = []
    outcomes: list[str] = []
    for ref in refs:
        item = _selected(dynamodb, settings.table, ref, str(opener["approver"]))
        outcome = "not_found" if item is None else one(item)
        domain = "unknown" if item is None else _cert(item.request, "domain")
        recorded = ""
        if item is not None and outcome == "already_decided":
            recorded = _recorded(dynamodb, settings.table, item.request)
        word, decided, detail = _RESULTS.get(outcome, _RETRY)
        results.append(pages.BatchResult(ref, domain, word, decided, recorded + detail))
        outcomes.append(outcome)
    return Answer(200, pages.batch_results(results), "batch_decided"), outcomes


def _selected(dynamodb: DynamoDBClient, table: str, ref: str, approver: str) -> Pending | None:
    """A ticked renewal: its records, when it is an approval bound to this approver; else None
    (unknown, or another approver's: the same answer, so nothing about it is told)."""
    approval = get_record(dynamodb, table, APPROVAL + ref)
    if approval is None or approval.get("kind") != "approval":
        return None
    if str(approval.get("approver")) != approver:
        return None
    request = get_record(dynamodb, table, str(approval["request"]))
    return Pending(approval, request) if request else None


def _refused(
    approval: dict[str, Any], settings: ApiSettings, visitor: Visitor, now: datetime
) -> Answer | None:
    """Whether the opening link may open the batch page: 403 for another signed-in person, 410
    once the link itself has expired; None when it may (its own renewal may be decided)."""
    if settings.sso_enabled and (visitor.email or "").lower() != str(approval["approver"]).lower():
        return Answer(403, pages.forbidden(visitor.email or ""), "not_approver")
    if int(now.timestamp()) > int(approval["expires_at"]) or approval.get("status") == EXPIRED:
        return Answer(410, pages.gone(), "expired")
    return None


def _still_open(
    approval: dict[str, Any], request: dict[str, Any], approver: str, now: datetime
) -> bool:
    approvers = {str(a).lower() for a in request.get("approvers", [])}
    return (
        approval.get("kind") == "approval"
        and str(approval.get("approver")) == approver
        and approver.lower() in approvers
        and approval.get("status") == PENDING
        and request.get("status") == PENDING
        and int(approval["expires_at"]) >= int(now.timestamp())
    )


def _recorded(dynamodb: DynamoDBClient, table: str, request: dict[str, Any]) -> str:
    """Who decided a request already, and how, as the result page says it."""
    now_stored = get_record(dynamodb, table, str(request["pk"])) or {}
    if now_stored.get("status") != DECIDED:
        return ""
    verb = "approved" if now_stored.get("decision") == "approve" else "rejected"
    who, when = now_stored.get("decided_by", "someone"), now_stored.get("decided_at", "?")
    return f"{who} {verb} it at {when}. "


def _form(body: str, base64_encoded: bool) -> dict[str, list[str]] | None:
    """The urlencoded batch form: csrf, decision and reason at most once, `item` repeated, no
    other field; None for anything else."""
    try:
        raw = base64.b64decode(body, validate=True) if base64_encoded else body.encode()
        if len(raw) > _MAX_BODY:
            return None
        fields = parse_qs(
            raw.decode(), keep_blank_values=True, max_num_fields=MAX_ITEMS + 3, errors="strict"
        )
    except (ValueError, UnicodeError):
        return None
    if not fields.keys() <= _SINGLE | {"item"}:
        return None
    if any(len(fields[name]) != 1 for name in _SINGLE & fields.keys()):
        return None
    return fields


def _single(form: dict[str, list[str]], name: str) -> str:
    return form[name][0] if name in form else ""


def _csrf(key: bytes, approval_id: str, settings: ApiSettings, visitor: Visitor) -> str:
    session = (visitor.email or "").lower() if settings.sso_enabled else ""
    return batch_csrf_token(key, approval_id, session)


def _cert(request: dict[str, Any], field: str) -> str:
    return str((request.get("certificate") or {}).get(field) or "unknown")
