"""Who rejected a renewal, as the certrelay.rejected event tells it."""

from __future__ import annotations

import json

from certrelay.outcomes import rejection


def test_the_approval_functions_cause_gives_who_when_and_why():
    cause = {"approver": "lead@example.com", "decided_at": "2026-11-27T09:00:00Z", "reason": "x"}

    facts = rejection({"error": {"Error": "ApprovalRejected", "Cause": json.dumps(cause)}})

    assert facts == cause


def test_a_missing_reason_is_empty_not_the_word_none():
    cause = {"approver": "web-lead@example.com", "decided_at": "2026-11-27T09:00:00Z"}

    facts = rejection({"error": {"Cause": json.dumps(cause)}})

    assert facts["reason"] == ""


def test_a_cause_that_is_not_json_is_kept_as_the_reason():
    facts = rejection({"error": {"Cause": "rejected by hand"}})

    assert facts == {"approver": "unknown", "decided_at": "unknown", "reason": "rejected by hand"}
