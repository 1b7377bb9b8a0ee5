"""How certrelay writes moments, day counts and certificate names: one wording for the policy's
summaries, the owner mails, the approval pages and every stored timestamp."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from certrelay.mail import CONTROL_CHARACTERS

# Characters of a target's result detail (workflow.TargetResult): 100 of them stay well inside
# 64 KiB. Here, not in the payload models, so the functions that write a detail need no pydantic.
DETAIL_LIMIT = 160

if TYPE_CHECKING:
    from certrelay.certificates import Certificate
    from certrelay.events import AcmEvent


def iso_z(moment: datetime) -> str:
    """ISO-8601 in UTC to the second with a "Z": `2025-01-01T12:00:00Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_z_at(epoch: int) -> str:
    """An epoch second as `iso_z` writes it."""
    return iso_z(datetime.fromtimestamp(epoch, UTC))


def utc_time(moment: datetime | None) -> str:
    """What a person reads: `2025-01-01 12:00 UTC`, or "an unknown date"."""
    if moment is None:
        return "an unknown date"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def on(moment: datetime | None) -> str:
    """` (2025-01-01 12:00 UTC)` after a verb, or nothing when the moment is unknown."""
    return f" ({utc_time(moment)})" if moment is not None else ""


def day_count(count: int) -> str:
    """`1 day`, `7 days`."""
    return f"{count} day" if count == 1 else f"{count} days"


def expires(days: int | None) -> str:
    """`expires in 7 days`, `expires today`, `expired 2 days ago`."""
    if days is None:
        return "expires at an unknown date"
    if days < 0:
        return f"expired {day_count(-days)} ago"
    return "expires today" if days == 0 else f"expires in {day_count(days)}"


def clean(text: str) -> str:
    """A value shown on one line of a mail or summary: no control characters, newlines included."""
    return CONTROL_CHARACTERS.sub("", text)


def certificate_name(event: AcmEvent, certificate: Certificate | None) -> str:
    """ACM's domain name for the certificate, else the event's common name, else its ARN."""
    if certificate is not None and certificate.domain:
        return clean(certificate.domain)
    return clean(event.detail.common_name or event.certificate_arn)
