"""The export cost guard: one ExportCertificate per certificate and serial, and at most a
profile's `exports_per_day` of them per UTC day.

Both records live in the event table, beside the events' idempotency records:
- `export#<certificate ARN>#<serial>` is claimed (EXPORTING) before ACM is asked and set EXPORTED
  once the bundle's manifest is written. A later run of the same serial finds the bundle in the
  bucket first and reuses it; it reaches the claim only when the bundle is missing, and then it
  does not export again: BundleNotFound (ServiceThrottled, for the retry, while the other run may
  still be writing). The claim's own execution may take it again (a Lambda retry).
- `export-day#<profile>#<YYYY-MM-DD>` is an atomic counter (ADD under the cap, a TTL). A new claim
  is counted; at the cap the claim is released and ExportCapReached ends the run.
An ExportCertificate call that fails releases its claim (its day's count stays: the guard errs
on the side of fewer exports).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from certrelay.approval_records import error_code, get_record, put_new, set_fields, to_db
from certrelay.errors import BundleNotFound, ConfigurationError, ExportCapReached, ServiceThrottled
from certrelay.text import iso_z

CLAIM, DAY = "export#", "export-day#"  # partition key prefixes in the event table
EXPORTING, EXPORTED = "EXPORTING", "EXPORTED"
CLAIM_KEEP = timedelta(days=400)  # past any serial's life (398 days at most), then TTL
DAY_KEEP = timedelta(days=2)  # a day's counter outlives its day, then TTL
# A claim this young may be a run still writing its bundle (the export function times out at
# 60 s; its retries back off at most 30 s each): the caller's retry will find the bundle.
IN_FLIGHT = timedelta(minutes=5)


def claim_key(certificate_arn: str, serial: str) -> str:
    return f"{CLAIM}{certificate_arn}#{serial}"


def day_key(profile: str, now: datetime) -> str:
    return f"{DAY}{profile}#{now.astimezone(UTC).date().isoformat()}"


@dataclass(frozen=True)
class ExportGuard:
    """The event table's export records, through one DynamoDB client."""

    dynamodb: Any
    table: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str], dynamodb: Any) -> ExportGuard:
        table = environ.get("EVENT_TABLE_NAME", "").strip()
        if not table:
            raise ConfigurationError("EVENT_TABLE_NAME not set: the export cost guard has no table")
        return cls(dynamodb, table)

    def claim(
        self,
        certificate_arn: str,
        serial: str,
        *,
        execution: str,
        profile: str,
        exports_per_day: int,
        now: datetime,
    ) -> int | None:
        """Claim the one export of `serial` and count it against the profile's day.

        Returns the day's count after this export (None for a retry of this execution's own
        claim, already counted). Raises BundleNotFound when another run exported or claimed the
        serial, ServiceThrottled while that run may still be at it, ExportCapReached at the cap.
        """
        pk = claim_key(certificate_arn, serial)
        claim = {
            "pk": pk,
            "kind": "export",
            "status": EXPORTING,
            "execution": execution,
            "profile": profile,
            "claimed_at": iso_z(now),
            "expires_at": int((now + CLAIM_KEEP).timestamp()),
        }
        if not put_new(self.dynamodb, self.table, claim):
            earlier = get_record(self.dynamodb, self.table, pk) or {}
            if earlier.get("execution") == execution and earlier.get("status") == EXPORTING:
                return None
            raise _refusal(certificate_arn, serial, earlier, now)
        try:
            return self._count(profile, exports_per_day, now)
        except ExportCapReached:
            self.release(certificate_arn, serial, execution=execution)
            raise

    def exported(
        self, certificate_arn: str, serial: str, *, fingerprint: str, now: datetime
    ) -> None:
        """The bundle is complete: the claim says so (and who reads it knows the export is done)."""
        values = {"status": EXPORTED, "exported_at": iso_z(now), "fingerprint_sha256": fingerprint}
        set_fields(self.dynamodb, self.table, claim_key(certificate_arn, serial), values)

    def release(self, certificate_arn: str, serial: str, *, execution: str) -> None:
        """Give up this execution's claim (no export happened); another's is never touched."""
        try:
            self.dynamodb.delete_item(
                TableName=self.table,
                Key={"pk": {"S": claim_key(certificate_arn, serial)}},
                ConditionExpression="#execution = :execution AND #status = :exporting",
                ExpressionAttributeNames={"#execution": "execution", "#status": "status"},
                ExpressionAttributeValues=to_db({":execution": execution, ":exporting": EXPORTING}),
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise

    def _count(self, profile: str, cap: int, now: datetime) -> int:
        """Add one to the profile's export count of the UTC day, only below the cap."""
        try:
            answer = self.dynamodb.update_item(
                TableName=self.table,
                Key={"pk": {"S": day_key(profile, now)}},
                UpdateExpression=(
                    "ADD #exports :one SET #expires = if_not_exists(#expires, :expires), "
                    "#kind = :kind, #profile = :profile"
                ),
                ConditionExpression="attribute_not_exists(#exports) OR #exports < :cap",
                ExpressionAttributeNames={
                    "#exports": "exports",
                    "#expires": "expires_at",
                    "#kind": "kind",
                    "#profile": "profile",
                },
                ExpressionAttributeValues=to_db(
                    {
                        ":one": 1,
                        ":cap": cap,
                        ":expires": int((now + DAY_KEEP).timestamp()),
                        ":kind": "export-day",
                        ":profile": profile,
                    }
                ),
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            day = now.astimezone(UTC).date().isoformat()
            raise ExportCapReached(
                f"profile {profile!r} reached its cap of {cap} exports on {day} (UTC): nothing "
                "was exported; the certificate goes out when the event comes again on a later "
                "day, or raise exports_per_day"
            ) from None
        return int(answer["Attributes"]["exports"]["N"])


def _refusal(
    certificate_arn: str, serial: str, earlier: Mapping[str, Any], now: datetime
) -> Exception:
    """Why a serial another run claimed is not exported again."""
    who = f"execution {earlier.get('execution', '?')} at {earlier.get('claimed_at', '?')}"
    if earlier.get("status") == EXPORTED:
        return BundleNotFound(
            f"serial {serial} of {certificate_arn} was exported by {who}, but its bundle is not "
            "in the bucket: certrelay exports a serial once; restore the bundle, or delete the "
            f"record {claim_key(certificate_arn, serial)} to export it again"
        )
    claimed_at = _parse(str(earlier.get("claimed_at", "")))
    if claimed_at is not None and now - claimed_at < IN_FLIGHT:
        return ServiceThrottled(f"serial {serial} of {certificate_arn} is being exported by {who}")
    return BundleNotFound(
        f"serial {serial} of {certificate_arn} was claimed for export by {who}, which never "
        "wrote its bundle: certrelay exports a serial once; delete the record "
        f"{claim_key(certificate_arn, serial)} to export it again"
    )


def _parse(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
