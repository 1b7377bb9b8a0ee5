"""The daily digest: one mail per owner listing the routine outcomes held for them.

A routine mail of a `notify: digest` profile (certrelay.delivery) is not published: Notify
Owners' "Hold For Digest" state, or the notify function for a routine distribution report,
stores a line `held#<mail marker>` in the digest table (`hold`, a conditional put: a redelivery
stores nothing twice). Once a day the Digest function (`send_digests`) mails each owner with
lines one message, then marks them sent.

Once per (owner, day), however often the schedule or Lambda retries the function: the owner's
pending lines are first moved into the day's batch (`pending` = the day), the mail goes out
through a marker per (day, owner) (certrelay.mail_markers), and only then are the batch's lines
marked sent. A retry after the mail went out finds the marker SENT: it marks that batch sent
and leaves lines held since then for tomorrow. An owner with no lines gets no mail. A line
holds a subject, a one-line summary, the certificate and the execution: never a body or secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from certrelay.approval_records import error_code, get_record, put_new, to_db
from certrelay.mail import console_url_for, inline, subject_line
from certrelay.mail_markers import SENT, marker_key, publish_once
from certrelay.text import iso_z

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sns import SNSClient

HELD = "held#"  # partition key prefix of a held line
PENDING = "PENDING"  # a line's `pending` until a digest takes it into its day's batch
INDEX = "Pending"  # the digest table's index on (pending, owner): the lines not mailed yet
KIND = "digest"  # the mail marker's kind: notified#digest#<day>#digest#<sha256(owner)>
EVENT_KIND = "Digest"  # the event_kind message attribute
KEEP_SENT = timedelta(days=35)  # a sent line stays this long (to answer "was I told?"), then TTL
LISTED = 100  # lines listed in one mail; the rest are counted (each is in its execution)
_OUR_PREFIX = re.compile(r"^\[certrelay\] [A-Z]+: ")


@dataclass(frozen=True)
class Line:
    """One held outcome as the digest lists it."""

    pk: str
    owner: str
    subject: str
    summary: str
    certificate: str
    execution: str
    held_at: str


def hold(
    dynamodb: DynamoDBClient,
    table: str,
    *,
    marker: str,
    owner: str,
    message: Mapping[str, Any],
    summary: str,
    execution: str,
    now: datetime,
) -> bool:
    """Hold one owner's mail (as `mail.sns_message` builds it) for the digest instead of
    publishing it; False when this marker's line is already held."""
    attributes = message["attributes"]
    return put_new(
        dynamodb,
        table,
        {
            "pk": f"{HELD}{marker}",
            "owner": owner,
            "pending": PENDING,
            "held_at": iso_z(now),
            "subject": str(message["subject"]),
            "summary": summary,
            "severity": attributes["severity"]["StringValue"],
            "event_kind": attributes["event_kind"]["StringValue"],
            "certificate": attributes["certificate"]["StringValue"],
            "execution": execution,
            "expires_at": int((now + KEEP_SENT).timestamp()),
        },
    )


def send_digests(
    dynamodb: DynamoDBClient, sns: SNSClient, *, table: str, topic: str, now: datetime
) -> dict[str, Any]:
    """Mail every owner with held lines their digest for `now`'s UTC day; mark the lines sent.

    Every owner is tried; if any publish failed, the first error is raised after the others
    were mailed, so Lambda's retry mails only the owners not reached.
    """
    day = now.date().isoformat()
    owners = sorted(
        {line.owner for batch in (PENDING, day) for line in _query(dynamodb, table, batch)}
    )
    mailed, lines, failures = 0, 0, []
    for owner in owners:
        try:
            sent, count = _digest_for(dynamodb, sns, table=table, topic=topic, owner=owner, now=now)
        except Exception as error:  # the others are still mailed; the first error is raised below
            failures.append(error)
            continue
        mailed, lines = mailed + sent, lines + count
    if failures:
        raise failures[0]
    return {"day": day, "owners": len(owners), "mailed": mailed, "lines": lines}


def _digest_for(
    dynamodb: DynamoDBClient, sns: SNSClient, *, table: str, topic: str, owner: str, now: datetime
) -> tuple[int, int]:
    """(1 if this call mailed `owner`, lines marked sent)."""
    day = now.date().isoformat()
    batch_marker = get_record(dynamodb, table, marker_key(f"{KIND}#{day}", KIND, owner)) or {}
    if batch_marker.get("status") != SENT:  # today's mail not out yet: take what is pending
        for line in _query(dynamodb, table, PENDING, owner):
            _move(dynamodb, table, line.pk, PENDING, day)
    batch = sorted(_query(dynamodb, table, day, owner), key=lambda line: line.held_at)
    if not batch:
        return 0, 0
    published = publish_once(
        dynamodb,
        sns,
        table=table,
        topic=topic,
        execution=f"{KIND}#{day}",
        kind=KIND,
        message=compose_digest(owner, day, batch),
        now=now,
    )
    sent = {":sent_in": day, ":expires_at": int((now + KEEP_SENT).timestamp())}
    for line in batch:
        _move(dynamodb, table, line.pk, day, None, sent)
    return int(published), len(batch)


def compose_digest(owner: str, day: str, lines: list[Line]) -> dict[str, Any]:
    """The owner's one digest mail, as `publish_once` takes it (no certificate attribute: a
    digest is about several)."""
    count = len(lines)
    noun = "routine update" if count == 1 else "routine updates"
    body = [
        f"Your certrelay digest for {day}: {count} {noun} since the last digest.",
        "Nothing here needs you: certrelay mails anything that does at once.",
        "",
    ]
    for number, line in enumerate(lines[:LISTED], start=1):
        where = console_url_for(line.execution) or line.execution
        body += [
            f"{number}. {inline(_OUR_PREFIX.sub('', line.subject))}",
            f"   {inline(line.summary)}",
            f"   Held at {inline(line.held_at)}; execution: {inline(where, 2048)}",
            "",
        ]
    if count > LISTED:
        body += [f"... and {count - LISTED} more, each in its execution's history.", ""]
    body += [
        "Why you received this",
        "  You own certificates of a certrelay profile with notify: digest: its routine mails",
        "  come together once a day.",
    ]
    return {
        "subject": subject_line("INFORMATIONAL", f"daily digest for {day}: {count} {noun}"),
        "message": "\n".join(body) + "\n",
        "attributes": {
            "recipient": {"DataType": "String", "StringValue": owner},
            "severity": {"DataType": "String", "StringValue": "INFORMATIONAL"},
            "event_kind": {"DataType": "String", "StringValue": EVENT_KIND},
        },
    }


def _query(
    dynamodb: DynamoDBClient, table: str, batch: str, owner: str | None = None
) -> Iterator[Line]:
    """The lines of one batch (PENDING or a day), of one owner or of everyone."""
    condition = "#pending = :batch" + (" AND #owner = :owner" if owner else "")
    values = {":batch": batch, **({":owner": owner} if owner else {})}
    names = {"#pending": "pending", **({"#owner": "owner"} if owner else {})}
    pages = dynamodb.get_paginator("query").paginate(
        TableName=table,
        IndexName=INDEX,
        KeyConditionExpression=condition,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=to_db(values),
    )
    for page in pages:
        for item in page.get("Items", []):
            yield Line(
                pk=item["pk"]["S"],
                owner=item["owner"]["S"],
                subject=item.get("subject", {}).get("S", ""),
                summary=item.get("summary", {}).get("S", ""),
                certificate=item.get("certificate", {}).get("S", ""),
                execution=item.get("execution", {}).get("S", ""),
                held_at=item.get("held_at", {}).get("S", ""),
            )


def _move(
    dynamodb: DynamoDBClient,
    table: str,
    pk: str,
    source: str,
    target: str | None,
    sent: Mapping[str, Any] | None = None,
) -> None:
    """Move a line from batch `source` to `target`, or out of the index once `sent` (its
    sent_in day and new expiry), only if it is still in `source`: two runs never take one line
    into two batches."""
    if target is not None:
        update, values = "SET #pending = :target", {":source": source, ":target": target}
    else:
        sent = sent or {}
        update = "SET " + ", ".join(f"{k[1:]} = {k}" for k in sent) + " REMOVE #pending"
        values = {":source": source, **sent}
    try:
        dynamodb.update_item(
            TableName=table,
            Key={"pk": {"S": pk}},
            UpdateExpression=update,
            ConditionExpression="#pending = :source",
            ExpressionAttributeNames={"#pending": "pending"},
            ExpressionAttributeValues=to_db(values),
        )
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
