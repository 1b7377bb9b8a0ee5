"""Expiry reminders: the threshold days, the day count, and the event both ACM and the sweep send.

Small on purpose, with no third-party imports: the daily sweep needs only this, and triage and
the sweep must count days the same way for the idempotency gate to see one reminder, not two.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from certrelay.errors import ConfigurationError

APPROACHING_EXPIRATION_DETAIL_TYPE = "ACM Certificate Approaching Expiration"
# The reconciliation sweep re-sends missed expiry reminders under its own source (EventBridge
# keeps `aws.*` for AWS); triage trusts neither source's facts and re-reads ACM either way.
SWEEP_SOURCE = "certrelay.sweep"

DEFAULT_THRESHOLDS = frozenset({45, 30, 15, 7, 3, 1})
DEFAULT_THRESHOLD_DAYS = ",".join(str(day) for day in sorted(DEFAULT_THRESHOLDS, reverse=True))
_THRESHOLD_DAY = re.compile(r"[1-9][0-9]{0,2}")  # a JSON number: no sign, no leading zero


def days_until(moment: datetime, now: datetime) -> int:
    """Days from `now` to `moment`: calendar days (UTC) ahead, whole days rounded down once past.

    "Expires in 15 days" for Dec 12 read on Nov 27, whatever the time of day, so the email
    agrees with the calendar and with the day ACM counted when it sent the event; an hour past
    expiry is already -1.
    """
    if moment <= now:
        return math.floor((moment - now).total_seconds() / 86400)
    return (moment.astimezone(UTC).date() - now.astimezone(UTC).date()).days


def expiry_thresholds(environ: Mapping[str, str]) -> frozenset[int]:
    """EXPIRY_THRESHOLD_DAYS (the rule's and the sweep's reminder days), or the defaults.

    The same days sit in the rule's event pattern as JSON numbers, where `07` is not a number:
    the template's AllowedPattern and this parse refuse leading zeros alike.
    """
    text = environ.get("EXPIRY_THRESHOLD_DAYS", "").strip() or DEFAULT_THRESHOLD_DAYS
    days: set[int] = set()
    for part in (piece.strip() for piece in text.split(",")):
        if _THRESHOLD_DAY.fullmatch(part) is None or int(part) > 365:
            raise ConfigurationError(
                f"EXPIRY_THRESHOLD_DAYS {text!r} must be comma-separated whole days, 1 to 365, "
                "without leading zeros"
            )
        days.add(int(part))
    return frozenset(days)
