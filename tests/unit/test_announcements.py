"""The events-out schema: what a team's rule may rely on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from certrelay import announcements

ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
CERTIFICATE = {
    "arn": ARN,
    "domain": "web.example.com",
    "type": "PRIVATE",
    "status": "ISSUED",
    "serial": "0a:1b",
    "not_after": "2027-01-01T00:00:00Z",
    "days_to_expiry": 30,
    "in_use": True,
}


def event(outcome: str, **fields: Any) -> dict[str, Any]:
    detail = {
        "schema_version": "1",
        "outcome": outcome,
        "execution": "arn:aws:states:us-east-1:123456789012:execution:certrelay:run-1",
        "certificate": CERTIFICATE,
        "event_kind": "Available",
        "route": "distribute",
        "profile": "web",
        **fields,
    }
    return {"source": "certrelay", "detail-type": f"certrelay.{outcome}", "detail": detail}


def test_a_well_formed_event_parses_into_its_outcome_model():
    parsed = announcements.parse(
        event(
            "distribution-incomplete",
            distributed=2,
            failed=1,
            failed_targets=["server i-1"],
            approver="policy",
            approval_reason="LikeForLike",
        )
    )

    assert isinstance(parsed, announcements.DistributionResult)
    assert parsed.failed_targets == ["server i-1"]
    assert (parsed.approver, parsed.approval_reason) == ("policy", "LikeForLike")


def test_an_approval_says_who_approved_by_policy_and_why():
    # GIVEN a renewal the profile's policy approved as like-for-like
    decision = {
        "decision": "approve",
        "approver": "policy",
        "decided_at": "2026-12-01T10:00:00Z",
        "reason": "LikeForLike",
        "reasons": ["LikeForLike"],
    }
    raw = event("approved", decision=decision, approver="policy", approval_reason="LikeForLike")
    # WHEN a team's rule reads it THEN approver and reason code are there; an unknown approver
    # kind is refused
    parsed = announcements.parse(raw)
    assert isinstance(parsed, announcements.Approved)
    assert (parsed.approver, parsed.approval_reason) == ("policy", "LikeForLike")
    with pytest.raises(ValueError, match="approver"):
        announcements.parse(
            event("approved", decision=decision, approver="robot", approval_reason="LikeForLike")
        )


def test_detail_as_a_json_string_is_accepted_as_eventbridge_targets_may_see_it():
    raw = event("finding-resolved", finding_ids=["f-1"])
    raw["detail"] = json.dumps(raw["detail"])

    assert isinstance(announcements.parse(raw), announcements.FindingResolved)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": "aws.acm"}, "source"),
        ({"detail-type": "certrelay.approved"}, "detail-type"),
    ],
)
def test_source_and_detail_type_must_agree_with_the_outcome(change, message):
    raw = {**event("finding-resolved", finding_ids=["f-1"]), **change}

    with pytest.raises(ValueError, match=message):
        announcements.parse(raw)


def test_unknown_fields_and_missing_fields_are_refused():
    with pytest.raises(ValueError, match="token"):
        announcements.parse(event("finding-resolved", finding_ids=[], token="x"))
    with pytest.raises(ValueError, match="problem"):
        announcements.parse(event("finding-raised", finding_ids=["f-1"]))


def test_announce_puts_one_validated_entry_and_raises_when_refused():
    class Bus:
        def __init__(self, failed: int) -> None:
            self.failed = failed
            self.entries: list[dict[str, Any]] = []

        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            self.entries.extend(Entries)
            if self.failed:
                return {
                    "FailedEntryCount": 1,
                    "Entries": [{"ErrorCode": "X", "ErrorMessage": "no"}],
                }
            return {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}

    detail = event("finding-resolved", finding_ids=["f-1"])["detail"]
    ok = Bus(0)
    announcements.announce(ok, detail)  # type: ignore[arg-type]
    (entry,) = ok.entries

    assert entry["Source"] == "certrelay"
    assert entry["DetailType"] == "certrelay.finding-resolved"
    assert entry["Resources"] == [ARN]
    with pytest.raises(announcements.AnnouncementFailed, match="X: no"):
        announcements.announce(Bus(1), detail)  # type: ignore[arg-type]


def test_the_json_schema_names_every_outcome():
    text = json.dumps(announcements.json_schema())

    for outcome in announcements.OUTCOMES:
        assert f'"{outcome}"' in text


def test_announce_refuses_a_detail_whose_outcome_is_not_certrelays_and_puts_nothing():
    class Bus:
        def __init__(self) -> None:
            self.entries: list[dict[str, Any]] = []

        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            self.entries.extend(Entries)
            return {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}

    bus = Bus()
    detail = event("finding-resolved", finding_ids=["f-1"])["detail"]

    for outcome in ("finding-reopened", None, ["finding-resolved"]):
        with pytest.raises(ValueError, match="is not one of"):
            announcements.announce(bus, {**detail, "outcome": outcome})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="finding_ids"):  # its model checks every field
        announcements.announce(bus, {**detail, "finding_ids": "f-1"})  # type: ignore[arg-type]
    assert bus.entries == []
