"""Settings come from the Lambda environment; a bad one is one ConfigurationError line."""

from __future__ import annotations

from pathlib import Path

import pytest

from certrelay.config import Settings
from certrelay.errors import ConfigurationError

# What Lambda (AWS_REGION) and the template (the stack's account and partition) always set.
STACK = {"AWS_REGION": "eu-west-1", "STACK_ACCOUNT_ID": "123456789012", "STACK_PARTITION": "aws"}


def test_defaults_apply_when_only_the_fallback_owner_is_set() -> None:
    settings = Settings.from_env({"FALLBACK_OWNER_EMAIL": "ops@example.com", **STACK})
    assert settings.fallback_owner_email == "ops@example.com"
    assert settings.expiry_threshold_days == frozenset({45, 30, 15, 7, 3, 1})
    assert settings.profiles_file is None
    assert settings.event_record_ttl_days == 400
    assert settings.owner_email_domains == frozenset()  # any domain


def test_every_setting_is_read() -> None:
    settings = Settings.from_env(
        {
            **STACK,
            "FALLBACK_OWNER_EMAIL": " ops@example.com ",
            "EXPIRY_THRESHOLD_DAYS": "30, 7,1",
            "PROFILES_FILE": "/var/task/config/profiles.yaml",
            "EVENT_RECORD_TTL_DAYS": "30",
            "OWNER_EMAIL_DOMAINS": "Example.com, @corp.example.org",
        }
    )
    assert settings.owner_email_domains == frozenset({"example.com", "corp.example.org"})
    assert settings.expiry_threshold_days == frozenset({30, 7, 1})
    assert settings.profiles_file == Path("/var/task/config/profiles.yaml")
    assert settings.event_record_ttl_days == 30
    assert (settings.account, settings.region, settings.partition) == (
        "123456789012",
        "eu-west-1",
        "aws",
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "FALLBACK_OWNER_EMAIL is not set"),
        ({"FALLBACK_OWNER_EMAIL": "ops@"}, "FALLBACK_OWNER_EMAIL 'ops@' is not a valid email"),
        (
            {"FALLBACK_OWNER_EMAIL": "ops@example.com", "EXPIRY_THRESHOLD_DAYS": "30,seven"},
            "EXPIRY_THRESHOLD_DAYS '30,seven' must be comma-separated whole days",
        ),
        (
            {"FALLBACK_OWNER_EMAIL": "ops@example.com", "EVENT_RECORD_TTL_DAYS": "-1", **STACK},
            "EVENT_RECORD_TTL_DAYS '-1' must be a whole number of days",
        ),
        (
            {"FALLBACK_OWNER_EMAIL": "ops@example.com", **STACK, "STACK_ACCOUNT_ID": ""},
            "STACK_ACCOUNT_ID is not set: triage compares each event's origin with the stack's",
        ),
        (
            {"FALLBACK_OWNER_EMAIL": "ops@example.com", **STACK, "AWS_REGION": "us-east-1 x"},
            "AWS_REGION 'us-east-1 x' is not an AWS region name",
        ),
        (
            {"FALLBACK_OWNER_EMAIL": "ops@example.com", **STACK, "STACK_ACCOUNT_ID": "12345"},
            "STACK_ACCOUNT_ID '12345' is not a 12-digit account ID",
        ),
        (
            {"FALLBACK_OWNER_EMAIL": "ops@example.com", **STACK, "OWNER_EMAIL_DOMAINS": "a b"},
            "OWNER_EMAIL_DOMAINS has 'a b', which is not a domain",
        ),
        (
            {"FALLBACK_OWNER_EMAIL": "ops@example.com", **STACK, "STACK_PARTITION": "azure"},
            "STACK_PARTITION 'azure' is not an AWS partition",
        ),
    ],
)
def test_invalid_settings_raise_one_line(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(environ)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("days", ["07", "45,07", "0", "30,366", "+7", "7.0", "\u0667"])
def test_threshold_days_the_rule_pattern_cannot_hold_are_refused(days: str) -> None:
    """GIVEN a threshold day with a leading zero (invalid JSON in the rule), zero or past a year
    WHEN the settings are read THEN one ConfigurationError line names the setting."""
    environ = {"FALLBACK_OWNER_EMAIL": "ops@example.com", "EXPIRY_THRESHOLD_DAYS": days}

    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(environ)

    assert str(caught.value).startswith(f"EXPIRY_THRESHOLD_DAYS {days!r} must be")
    assert "without leading zeros" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_threshold_days_from_one_to_a_year_are_accepted() -> None:
    settings = Settings.from_env(
        {
            "FALLBACK_OWNER_EMAIL": "ops@example.com",
            "EXPIRY_THRESHOLD_DAYS": "365,100,10,1",
            **STACK,
        }
    )

    assert settings.expiry_threshold_days == frozenset({365, 100, 10, 1})
