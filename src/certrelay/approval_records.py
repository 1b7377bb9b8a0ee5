"""The approval table: its key prefixes, record states, and the few DynamoDB calls made on it.

One table holds three kinds of record, each under its own prefix: the request (keyed by the task
token's digest), one approval per link (keyed by the link id's digest) and the audit items. Audit
items are append-only: each attempt, refusal and callback result is a new item under its own key
(`audit#<link digest>#<time>#<random>`), put only where none exists, never updated or deleted.
Times stored for people to read are ISO-8601 UTC to the second.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

REQUEST, APPROVAL, AUDIT = "request#", "approval#", "audit#"  # partition key prefixes
PENDING, DECIDED, EXPIRED = "PENDING", "DECIDED", "EXPIRED"
# The table's one global secondary index: approver (HASH) + expires_at (RANGE). Approval records
# are the only items holding both (audit items name an approver but no deadline; requests hold a
# deadline but a list of approvers), so the index lists approval records only. It projects the
# status, kind and request and nothing else: never a token.
APPROVER_INDEX = "ApproverIndex"
_INDEX_PAGES = 10  # a query reads at most this many pages of the index
_TO_DB, _FROM_DB = TypeSerializer(), TypeDeserializer()


def get_record(dynamodb: DynamoDBClient, table: str, pk: str) -> dict[str, Any] | None:
    """One record, read consistently; None when there is none."""
    item = dynamodb.get_item(TableName=table, Key={"pk": {"S": pk}}, ConsistentRead=True)
    found = item.get("Item")
    return {k: _FROM_DB.deserialize(v) for k, v in found.items()} if found else None


def open_approvals(
    dynamodb: DynamoDBClient, table: str, approver: str, now: datetime, *, limit: int
) -> list[dict[str, Any]]:
    """Up to `limit` PENDING approval records of one approver whose deadline has not passed,
    soonest deadline first, as the index holds them (pk, request, status, kind, expires_at).

    The index is eventually consistent: callers re-read each record before trusting it.
    """
    found: list[dict[str, Any]] = []
    start: Any = None
    for _ in range(_INDEX_PAGES):
        paging: Any = {"ExclusiveStartKey": start} if start else {}
        page = dynamodb.query(
            TableName=table,
            IndexName=APPROVER_INDEX,
            KeyConditionExpression="approver = :approver AND expires_at >= :now",
            FilterExpression="#status = :pending AND #kind = :approval",
            ExpressionAttributeNames={"#status": "status", "#kind": "kind"},
            ExpressionAttributeValues=to_db(
                {
                    ":approver": approver,
                    ":now": int(now.timestamp()),
                    ":pending": PENDING,
                    ":approval": "approval",
                }
            ),
            **paging,
        )
        found += [{k: _FROM_DB.deserialize(v) for k, v in i.items()} for i in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if start is None or len(found) >= limit:
            break
    return found[:limit]


def put_new(dynamodb: DynamoDBClient, table: str, item: Mapping[str, Any]) -> bool:
    """Put an item that must not exist yet; False when it already does."""
    try:
        dynamodb.put_item(
            TableName=table, Item=to_db(item), ConditionExpression="attribute_not_exists(pk)"
        )
    except ClientError as error:
        if error_code(error) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def audit_key(approval_pk: str, now: datetime) -> str:
    """A fresh key for one audit item about an approval: its link digest, the time, 64 random bits.

    Items of one approval sort by time; two attempts in the same microsecond still differ.
    """
    moment = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{AUDIT}{approval_pk.removeprefix(APPROVAL)}#{moment}#{secrets.token_hex(8)}"


def append_audit(dynamodb: DynamoDBClient, table: str, item: Mapping[str, Any]) -> None:
    """Append one audit item; a key that exists already is never overwritten."""
    if not put_new(dynamodb, table, item):
        raise RuntimeError("an audit key collided with a stored one")


def set_fields(dynamodb: DynamoDBClient, table: str, pk: str, values: Mapping[str, Any]) -> None:
    """Best-effort bookkeeping on an existing record (TTL may have removed it)."""
    try:
        dynamodb.update_item(**update_params(table, pk, values, "attribute_exists(pk)", {}))
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise


def update_params(
    table: str,
    pk: str,
    values: Mapping[str, Any],
    condition: str,
    extra: Mapping[str, Any],
    *,
    remove: Sequence[str] = (),
) -> Any:
    """UpdateItem parameters: SET every value and REMOVE `remove`, under `condition`."""
    names = {f"#a{i}": name for i, name in enumerate(values)}
    names |= {f"#r{i}": name for i, name in enumerate(remove)}
    if "#status" in condition:
        names["#status"] = "status"
    placeholders = {f":v{i}": value for i, value in enumerate(values.values())}
    expression = "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values)))
    if remove:
        expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove)))
    return {
        "TableName": table,
        "Key": {"pk": {"S": pk}},
        "UpdateExpression": expression,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": to_db({**placeholders, **extra}),
    }


def to_db(values: Mapping[str, Any]) -> Any:
    """Plain values as DynamoDB attribute values."""
    return {name: _TO_DB.serialize(value) for name, value in values.items()}


def error_code(error: ClientError) -> str:
    """The AWS error code of a failed call."""
    return str(error.response.get("Error", {}).get("Code", ""))
