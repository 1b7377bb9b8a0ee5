"""The Lambda functions' settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from certrelay.errors import ConfigurationError
from certrelay.owners import normalize_email
from certrelay.reminders import expiry_thresholds

DEFAULT_RECORD_TTL_DAYS = 400
DEFAULT_APPROVAL_HOURS = 24


@dataclass(frozen=True)
class Settings:
    """What the triage function needs to know about its deployment."""

    fallback_owner_email: str
    expiry_threshold_days: frozenset[int]
    profiles_file: Path | None
    event_record_ttl_days: int = DEFAULT_RECORD_TTL_DAYS
    approval_timeout_hours: int = DEFAULT_APPROVAL_HOURS  # when the profile sets none
    escalation_timeout_hours: int = DEFAULT_APPROVAL_HOURS

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate the settings; one ConfigurationError line when one is wrong."""
        raw_email = environ.get("FALLBACK_OWNER_EMAIL", "").strip()
        if not raw_email:
            raise ConfigurationError(
                "FALLBACK_OWNER_EMAIL is not set: certrelay needs an address for unowned "
                "certificates"
            )
        email = normalize_email(raw_email)
        if email is None:
            raise ConfigurationError(
                f"FALLBACK_OWNER_EMAIL {raw_email!r} is not a valid email address"
            )
        profiles_file = environ.get("PROFILES_FILE", "").strip()
        return cls(
            fallback_owner_email=email,
            expiry_threshold_days=expiry_thresholds(environ),
            profiles_file=Path(profiles_file) if profiles_file else None,
            event_record_ttl_days=_ttl_days(environ.get("EVENT_RECORD_TTL_DAYS", "").strip()),
            approval_timeout_hours=_hours(environ, "APPROVAL_TIMEOUT_HOURS"),
            escalation_timeout_hours=_hours(environ, "ESCALATION_TIMEOUT_HOURS"),
        )


def _ttl_days(text: str) -> int:
    if not text:
        return DEFAULT_RECORD_TTL_DAYS
    if not text.isdigit() or not 1 <= int(text) <= 3650:
        raise ConfigurationError(
            f"EVENT_RECORD_TTL_DAYS {text!r} must be a whole number of days, 1 to 3650"
        )
    return int(text)


def _hours(environ: Mapping[str, str], name: str) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return DEFAULT_APPROVAL_HOURS
    if not text.isdigit() or not 1 <= int(text) <= 168:
        raise ConfigurationError(f"{name} {text!r} must be a whole number of hours, 1 to 168")
    return int(text)
