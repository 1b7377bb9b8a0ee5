"""Publish one recipient's mail at most once per (execution, kind), across task retries.

Step Functions retries a Lambda task after an error, so a function that mails several people and
fails part-way would mail the ones already reached again. A marker per (execution ARN, kind,
sha256(recipient)) in the event table is claimed SENDING before the publish and set SENT after
it; a publish that fails deletes its marker again, so the retry mails that recipient. A SENDING
marker found by a later attempt is one that died before confirming: that recipient is mailed
again (a second mail is possible only then; a recipient is never skipped).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from certrelay.approval_links import digest
from certrelay.approval_records import get_record, put_new, set_fields
from certrelay.text import iso_z

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sns import SNSClient

NOTIFIED = "notified#"  # partition key prefix in the event table
SENDING, SENT = "SENDING", "SENT"
KEEP = timedelta(days=35)  # past the workflow's 24-day timeout, then TTL removes the marker


def marker_key(execution: str, kind: str, recipient: str) -> str:
    """`notified#<execution ARN>#<kind>#<sha256(recipient)>`: no address in the table."""
    return f"{NOTIFIED}{execution}#{kind}#{digest(recipient)}"


def publish_once(
    dynamodb: DynamoDBClient,
    sns: SNSClient,
    *,
    table: str,
    topic: str,
    execution: str,
    kind: str,
    message: Mapping[str, Any],
    now: datetime,
) -> bool:
    """Publish `message` (as `mail.sns_message` builds it) unless this execution already mailed
    its recipient for `kind`; True when this call published."""
    recipient = str(message["attributes"]["recipient"]["StringValue"])
    pk = marker_key(execution, kind, recipient)
    claim = {
        "pk": pk,
        "kind": "notified",
        "status": SENDING,
        "claimed_at": iso_z(now),
        "expires_at": int((now + KEEP).timestamp()),
    }
    if not put_new(dynamodb, table, claim):
        earlier = get_record(dynamodb, table, pk) or {}
        if earlier.get("status") == SENT:
            return False
    try:
        sns.publish(
            TopicArn=topic,
            Subject=message["subject"],
            Message=message["message"],
            MessageAttributes=message["attributes"],
        )
    except Exception:
        dynamodb.delete_item(TableName=table, Key={"pk": {"S": pk}})
        raise
    set_fields(dynamodb, table, pk, {"status": SENT, "sent_at": iso_z(now)})
    return True
