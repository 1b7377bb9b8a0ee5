"""Immediate or digest: which owner mails may wait for the daily digest."""

from __future__ import annotations

import pytest

from certrelay.delivery import delivery
from certrelay.errors import ProfileError
from certrelay.profiles import load_profiles


@pytest.mark.parametrize("severity", ["INFORMATIONAL", "LOW", "MEDIUM"])
def test_a_routine_outcome_of_a_digest_profile_waits_for_the_digest(severity: str) -> None:
    # GIVEN a digest profile and an outcome that needs nobody
    # WHEN delivery is decided THEN the mail is held for the digest
    assert delivery(notify_mode="digest", severity=severity, needs_action=False) == "digest"


@pytest.mark.parametrize("severity", ["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"])
def test_an_immediate_profile_is_always_mailed_at_once(severity: str) -> None:
    assert delivery(notify_mode="immediate", severity=severity, needs_action=False) == "immediate"
    assert delivery(notify_mode="immediate", severity=severity, needs_action=True) == "immediate"


@pytest.mark.parametrize("severity", ["INFORMATIONAL", "LOW", "MEDIUM"])
def test_an_outcome_that_needs_action_is_mailed_at_once_even_for_a_digest_profile(
    severity: str,
) -> None:
    assert delivery(notify_mode="digest", severity=severity, needs_action=True) == "immediate"


@pytest.mark.parametrize("severity", ["HIGH", "CRITICAL", "high", "critical"])
def test_a_high_or_critical_outcome_is_mailed_at_once_even_when_routine(severity: str) -> None:
    assert delivery(notify_mode="digest", severity=severity, needs_action=False) == "immediate"


def test_a_profile_mails_at_once_unless_it_asks_for_a_digest() -> None:
    profiles = load_profiles(
        "profiles:\n  web:\n    owners: [a@example.com]\n  batch:\n    notify: digest\n"
    )
    assert profiles["web"].notify == "immediate"
    assert profiles["batch"].notify == "digest"


def test_an_unknown_notify_mode_is_one_line_naming_the_field() -> None:
    with pytest.raises(ProfileError) as caught:
        load_profiles("profiles:\n  web:\n    notify: weekly\n", source="p.yaml")
    assert str(caught.value) == (
        "p.yaml: profile 'web', notify: must be one of 'immediate' or 'digest' (got 'weekly')"
    )
