"""The Lambda functions' settings, read once from the environment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from certrelay.arns import ACCOUNT_ID, REGION
from certrelay.errors import ConfigurationError
from certrelay.organization import Organization
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
    # The stack's own account, region and partition: triage takes events about these only.
    account: str
    region: str
    partition: str
    # The accounts and Regions it serves besides: its own only, unless ORGANIZATION_MODE=hub.
    organization: Organization
    event_record_ttl_days: int = DEFAULT_RECORD_TTL_DAYS
    approval_timeout_hours: int = DEFAULT_APPROVAL_HOURS  # when the profile sets none
    escalation_timeout_hours: int = DEFAULT_APPROVAL_HOURS
    # OwnerEmailDomains: owners outside these domains are not told (empty: any domain).
    owner_email_domains: frozenset[str] = frozenset()

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
        thresholds = expiry_thresholds(environ)
        account = _matching(environ, "STACK_ACCOUNT_ID", ACCOUNT_ID, "a 12-digit account ID")
        region = _matching(environ, "AWS_REGION", REGION, "an AWS region name")
        partition = _matching(environ, "STACK_PARTITION", _PARTITION, "an AWS partition")
        return cls(
            fallback_owner_email=email,
            expiry_threshold_days=thresholds,
            profiles_file=Path(profiles_file) if profiles_file else None,
            account=account,
            region=region,
            partition=partition,
            organization=Organization.from_env(
                environ, account=account, region=region, partition=partition
            ),
            event_record_ttl_days=_ttl_days(environ.get("EVENT_RECORD_TTL_DAYS", "").strip()),
            approval_timeout_hours=_hours(environ, "APPROVAL_TIMEOUT_HOURS"),
            escalation_timeout_hours=_hours(environ, "ESCALATION_TIMEOUT_HOURS"),
            owner_email_domains=_domains(environ.get("OWNER_EMAIL_DOMAINS", "")),
        )


_PARTITION = re.compile(r"aws(?:-[a-z]+)*\Z")
_DOMAIN = re.compile(r"(?=.{1,253}\Z)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\Z")


def _domains(text: str) -> frozenset[str]:
    """OWNER_EMAIL_DOMAINS: a comma-separated list of DNS domains; empty means any domain."""
    domains = frozenset(
        part.strip().lower().lstrip("@") for part in text.split(",") if part.strip()
    )
    for domain in sorted(domains):
        if not _DOMAIN.fullmatch(domain):
            raise ConfigurationError(f"OWNER_EMAIL_DOMAINS has {domain!r}, which is not a domain")
    return domains


def _matching(environ: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> str:
    """A required identifier (the template or Lambda sets it), checked against its pattern."""
    text = environ.get(name, "").strip()
    if not text:
        raise ConfigurationError(
            f"{name} is not set: triage compares each event's origin with the stack's own"
        )
    if not pattern.fullmatch(text):
        raise ConfigurationError(f"{name} {text!r} is not {what}")
    return text


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
