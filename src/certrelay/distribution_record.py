"""The distribution record: what was distributed where, per certificate and target.

One DynamoDB table (the template's DistributionRecordTable), keyed by
`pk` = the certificate's ARN and `sk` = "certificate" (the certificate's last distribution: its
shape, serial, fingerprint, whether every target verified it, and how its last run ended) or
`target#<target id>` (one per target: serial, fingerprint, time, verified, status).
Record Distribution writes it after Report Distribution; Notify Export Failure marks the last
run failed; triage reads the "certificate" item for approval_policy; the console shows all of
it. Each write pushes `expires_at` a year on, so a certificate nobody renews any more drops out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from certrelay.approval_policy import LastDistribution, Shape
from certrelay.certificates import TRANSIENT_ERRORS
from certrelay.errors import ServiceThrottled
from certrelay.text import iso_z

CERTIFICATE_KEY = "certificate"
TARGET_PREFIX = "target#"
RECORD_TTL = timedelta(days=400)  # longer than any certificate's lifetime between renewals
EXPORT_FAILED = "export-failed"  # last_outcome when the run ended before any distribution


@dataclass(frozen=True)
class TargetRecord:
    target: str
    kind: str
    serial: str
    fingerprint: str
    distributed_at: str
    verified: bool
    status: str
    detail: str


@dataclass(frozen=True)
class CertificateRecord:
    """The whole record of one certificate, as the console shows it."""

    arn: str
    serial: str
    fingerprint: str
    distributed_at: str
    verified: bool
    last_run_succeeded: bool
    last_outcome: str
    last_run_at: str
    shape: Shape | None
    targets: tuple[TargetRecord, ...]


def distribution_items(
    decision: Mapping[str, Any], shape: Shape | None, *, execution: str, now: datetime
) -> list[dict[str, Any]]:
    """The items one reported distribution writes: each target's, then the certificate's
    (with the certificate's shape, unless ACM no longer has it)."""
    arn = str(decision["certificate"]["arn"])
    bundle = decision.get("bundle") or {}
    serial, fingerprint = str(bundle.get("serial") or ""), str(bundle.get("fingerprint") or "")
    results = list((decision.get("distribution") or {}).get("results") or [])
    complete = bool((decision.get("report") or {}).get("complete"))
    at, expires = iso_z(now), str(int((now + RECORD_TTL).timestamp()))
    common = {"serial": _s(serial), "fingerprint": _s(fingerprint), "expires_at": {"N": expires}}
    items = [
        {
            "pk": _s(arn),
            "sk": _s(TARGET_PREFIX + str(r.get("target"))),
            **common,
            "target": _s(str(r.get("target"))),
            "kind": _s(str(r.get("kind") or "")),
            "distributed_at": _s(at),
            "verified": {"BOOL": r.get("status") == "DISTRIBUTED"},
            "status": _s(str(r.get("status") or "")),
            "detail": _s(str(r.get("detail") or "")),
            "execution": _s(execution),
        }
        for r in results
    ]
    summary = {
        "pk": _s(arn),
        "sk": _s(CERTIFICATE_KEY),
        **common,
        "distributed_at": _s(at),
        "verified": {"BOOL": complete},
        "last_run_succeeded": {"BOOL": complete},
        "last_outcome": _s(str((decision.get("report") or {}).get("outcome") or "")),
        "last_run_at": _s(at),
        "execution": _s(execution),
        "profile": _s(str(decision.get("profile") or "")),
    }
    if shape is not None:
        summary["names"] = {"L": [_s(n) for n in sorted(shape.names)]}
        summary["key_algorithm"] = _s(shape.key_algorithm)
        summary["issuer"] = _s(shape.issuer)
        summary["targets"] = {"L": [_s(t) for t in sorted(shape.targets)]}
    return [*items, summary]


def write_distribution(
    dynamodb: Any,
    table: str,
    decision: Mapping[str, Any],
    shape: Shape | None,
    *,
    execution: str,
    now: datetime,
) -> dict[str, Any]:
    """Write what Report Distribution reported; the certificate's item last, so it never
    claims targets that are not written yet. Returns the brief the state keeps."""
    items = distribution_items(decision, shape, execution=execution, now=now)
    for item in items:
        _call(dynamodb.put_item, TableName=table, Item=item)
    summary = items[-1]
    return {
        "serial": summary["serial"]["S"],
        "verified": summary["verified"]["BOOL"],
        "last_run_succeeded": summary["last_run_succeeded"]["BOOL"],
        "targets": len(items) - 1,
    }


def mark_run_failed(
    dynamodb: Any, table: str, arn: str, *, outcome: str, execution: str, now: datetime
) -> bool:
    """The certificate's last run failed: approval: unless-changed asks a person next time.
    Only an existing record changes (a first distribution is a person's call anyway)."""
    try:
        _call(
            dynamodb.update_item,
            TableName=table,
            Key={"pk": _s(arn), "sk": _s(CERTIFICATE_KEY)},
            UpdateExpression=(
                "SET last_run_succeeded = :false, last_outcome = :outcome, "
                "last_run_at = :at, execution = :execution"
            ),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={
                ":false": {"BOOL": False},
                ":outcome": _s(outcome),
                ":at": _s(iso_z(now)),
                ":execution": _s(execution),
            },
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


def read_last(dynamodb: Any, table: str, arn: str) -> LastDistribution | None:
    """The certificate's last distribution as approval_policy reads it; None if none."""
    answer = _call(
        dynamodb.get_item,
        TableName=table,
        Key={"pk": _s(arn), "sk": _s(CERTIFICATE_KEY)},
        ConsistentRead=True,
    )
    item = answer.get("Item")
    return last_from_item(item) if item else None


def last_from_item(item: Mapping[str, Any]) -> LastDistribution | None:
    """A "certificate" item as a LastDistribution; None when it holds no shape."""
    if "key_algorithm" not in item:
        return None
    return LastDistribution(
        shape=Shape(
            names=frozenset(v["S"] for v in item.get("names", {}).get("L", [])),
            key_algorithm=item["key_algorithm"]["S"],
            issuer=item.get("issuer", {}).get("S", ""),
            targets=frozenset(v["S"] for v in item.get("targets", {}).get("L", [])),
        ),
        serial=item.get("serial", {}).get("S", ""),
        verified=bool(item.get("verified", {}).get("BOOL")),
        last_run_succeeded=bool(item.get("last_run_succeeded", {}).get("BOOL")),
    )


def read_record(dynamodb: Any, table: str, arn: str) -> CertificateRecord | None:
    """Everything on record for one certificate (the console's view); None if nothing."""
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :arn",
        "ExpressionAttributeValues": {":arn": _s(arn)},
    }
    for _ in range(10):  # at most 101 items: one page, or very few
        page = _call(dynamodb.query, **request)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    summary = next((i for i in items if i["sk"]["S"] == CERTIFICATE_KEY), None)
    if summary is None:
        return None
    last = last_from_item(summary)
    return CertificateRecord(
        arn=arn,
        serial=_text(summary, "serial"),
        fingerprint=_text(summary, "fingerprint"),
        distributed_at=_text(summary, "distributed_at"),
        verified=bool(summary.get("verified", {}).get("BOOL")),
        last_run_succeeded=bool(summary.get("last_run_succeeded", {}).get("BOOL")),
        last_outcome=_text(summary, "last_outcome"),
        last_run_at=_text(summary, "last_run_at"),
        shape=last.shape if last is not None else None,
        targets=tuple(
            TargetRecord(
                target=_text(i, "target"),
                kind=_text(i, "kind"),
                serial=_text(i, "serial"),
                fingerprint=_text(i, "fingerprint"),
                distributed_at=_text(i, "distributed_at"),
                verified=bool(i.get("verified", {}).get("BOOL")),
                status=_text(i, "status"),
                detail=_text(i, "detail"),
            )
            for i in sorted(items, key=lambda i: str(i["sk"]["S"]))
            if i["sk"]["S"].startswith(TARGET_PREFIX)
        ),
    )


def _call(method: Any, **kwargs: Any) -> dict[str, Any]:
    """One DynamoDB call; a throttle or 5xx becomes ServiceThrottled (the ASL retries it)."""
    try:
        answer: dict[str, Any] = method(**kwargs)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in TRANSIENT_ERRORS or code == "ProvisionedThroughputExceededException":
            raise ServiceThrottled(f"DynamoDB failed transiently ({code})") from error
        if status >= 500:
            raise ServiceThrottled(f"DynamoDB failed transiently ({code})") from error
        raise
    return answer


def _s(text: str) -> dict[str, str]:
    return {"S": text}


def _text(item: Mapping[str, Any], name: str) -> str:
    return str(item.get(name, {}).get("S", ""))
