"""The organisation sweep's own logic: pairs, one pair's sweep, and the summary of them all."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.exceptions import ClientError

from certrelay import org_sweep
from certrelay.errors import MemberRoleUnavailable, ServiceThrottled
from certrelay.organization import Organization
from certrelay.workflow import check_result

NOW = dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.UTC)
HUB = Organization(
    mode="hub",
    hub_account="111111111111",
    hub_region="us-east-1",
    partition="aws",
    member_accounts=frozenset({"333333333333", "222222222222"}),
    regions=frozenset({"us-east-1", "eu-west-1"}),
    external_id="an-external-id-of-16+",
)


def test_the_pairs_are_every_account_in_every_region_hub_first():
    assert org_sweep.sweep_pairs(HUB) == [
        {"account": "111111111111", "region": "us-east-1"},
        {"account": "111111111111", "region": "eu-west-1"},
        {"account": "222222222222", "region": "eu-west-1"},
        {"account": "222222222222", "region": "us-east-1"},
        {"account": "333333333333", "region": "eu-west-1"},
        {"account": "333333333333", "region": "us-east-1"},
    ]
    check_result("List Sweep Pairs", {"pairs": org_sweep.sweep_pairs(HUB)})  # HIS-02


class FakeAcm:
    def __init__(self, summaries: list[dict[str, Any]], error: str | None = None) -> None:
        self.summaries, self.error = summaries, error

    def get_paginator(self, name: str) -> FakeAcm:
        return self

    def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, "ListCertificates")
        return [{"CertificateSummaryList": self.summaries}]


class FakeEvents:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries += Entries
        return {"Entries": [{"EventId": str(i)} for i, _ in enumerate(Entries)]}


class FakeSessions:
    """Sessions' interface: which (service, account, region, role) was asked for."""

    def __init__(self, acm: FakeAcm, events: FakeEvents, refuse: bool = False) -> None:
        self.clients = {"acm": acm, "events": events}
        self.asked: list[tuple[str, str, str, str]] = []
        self.refuse = refuse

    def client(self, service: str, *, account: str, region: str, role: Any) -> Any:
        self.asked.append((service, account, region, role))
        if self.refuse:
            raise MemberRoleUnavailable(f"cannot assume the read role in {account}")
        return self.clients[service]


def summary(arn: str, days: int) -> dict[str, Any]:
    return {"CertificateArn": arn, "DomainName": "x.example", "NotAfter": NOW + dt.timedelta(days)}


def test_one_pair_is_listed_and_reminded_through_its_own_read_role_and_its_own_bus():
    # GIVEN a member pair with one certificate on a threshold day and one not
    due = "arn:aws:acm:eu-west-1:222222222222:certificate/due"
    acm = FakeAcm([summary(due, 30), summary(due.replace("due", "later"), 31)])
    events = FakeEvents()
    sessions = FakeSessions(acm, events)

    # WHEN the pair is swept
    result = org_sweep.sweep_pair(
        sessions, account="222222222222", region="eu-west-1", now=NOW, thresholds=frozenset({30})
    )

    # THEN both clients are the member's read role in that Region, and one reminder went out
    assert sessions.asked == [
        ("acm", "222222222222", "eu-west-1", "read"),
        ("events", "222222222222", "eu-west-1", "read"),
    ]
    assert result == {
        "account": "222222222222",
        "region": "eu-west-1",
        "listed": 2,
        "due": 1,
        "sent": 1,
        "failed": [],
    }
    check_result("Sweep Pair", result)  # HIS-02: the closed model of its state
    assert [e["Resources"] for e in events.entries] == [[due]]
    assert events.entries[0]["Source"] == "certrelay.sweep"


def test_a_throttled_listing_becomes_the_retryable_service_throttled():
    sessions = FakeSessions(FakeAcm([], error="ThrottlingException"), FakeEvents())

    with pytest.raises(ServiceThrottled, match="222222222222/eu-west-1"):
        org_sweep.sweep_pair(
            sessions, account="222222222222", region="eu-west-1", now=NOW, thresholds=frozenset()
        )


def test_a_refused_role_and_other_errors_are_raised_as_they_are_for_the_childs_catch():
    refused = FakeSessions(FakeAcm([]), FakeEvents(), refuse=True)
    denied = FakeSessions(FakeAcm([], error="AccessDeniedException"), FakeEvents())

    with pytest.raises(MemberRoleUnavailable):
        org_sweep.sweep_pair(
            refused, account="222222222222", region="eu-west-1", now=NOW, thresholds=frozenset()
        )
    with pytest.raises(ClientError):
        org_sweep.sweep_pair(
            denied, account="222222222222", region="eu-west-1", now=NOW, thresholds=frozenset()
        )


PAIRS = [
    {"account": "111111111111", "region": "us-east-1"},
    {"account": "222222222222", "region": "us-east-1"},
    {"account": "333333333333", "region": "us-east-1"},
    {"account": "444444444444", "region": "us-east-1"},
]


def test_the_summary_counts_swept_failed_refused_and_silent_pairs():
    # GIVEN one pair swept, one caught error, one with refused reminders, one child silent
    results: list[Any] = [
        {**PAIRS[0], "listed": 10, "due": 2, "sent": 2, "failed": []},
        {
            **PAIRS[1],
            "error": "MemberRoleUnavailable",
            "cause": '{"errorType": "MemberRoleUnavailable", "errorMessage": "cannot\\nassume"}',
        },
        {**PAIRS[2], "listed": 5, "due": 1, "sent": 0, "failed": ["arn: InternalFailure"]},
        None,
    ]

    # WHEN they are summarised
    summary = org_sweep.summarise({"pairs": PAIRS, "results": results})

    # THEN only the first counts as swept; every other pair is a failure with its reason
    assert (summary.pairs, summary.swept, summary.failed) == (4, 1, 3)
    assert (summary.listed, summary.due, summary.sent) == (15, 3, 2)
    assert [(f["account"], f["error"]) for f in summary.failures] == [
        ("222222222222", "MemberRoleUnavailable"),
        ("333333333333", "RemindersRefused"),
        ("444444444444", "NoResult"),
    ]
    assert summary.failures[0]["cause"] == "cannotassume", "the message, one line"
    assert summary.as_dict()["complete"] is True
    check_result("Summarise Sweep", summary.as_dict())  # HIS-02


def test_a_sweep_whose_map_failed_is_incomplete_and_every_unreported_pair_is_not_swept():
    summary = org_sweep.summarise(
        {"pairs": PAIRS, "error": {"Error": "States.ExceedToleratedFailureThreshold", "Cause": ""}}
    )

    assert summary.as_dict()["complete"] is False
    assert summary.incomplete.startswith("States.ExceedToleratedFailureThreshold")
    assert {f["error"] for f in summary.failures} == {"NotSwept"}
    subject, body = org_sweep.ops_message(summary) or ("", "")
    assert subject == "certrelay sweep: the sweep did not finish"
    assert "States.ExceedToleratedFailureThreshold" in body


def test_operations_hear_nothing_when_every_pair_was_swept():
    results = [{**p, "listed": 1, "due": 0, "sent": 0, "failed": []} for p in PAIRS]

    assert org_sweep.ops_message(org_sweep.summarise({"pairs": PAIRS, "results": results})) is None


def test_the_operations_message_lists_failed_pairs_and_caps_the_list():
    results = [{**p, "error": "RegionNotEnabled", "cause": "opt in"} for p in PAIRS]
    many = {"pairs": PAIRS * 20, "results": results * 20}

    subject, body = org_sweep.ops_message(org_sweep.summarise(many)) or ("", "")

    assert subject == "certrelay sweep: 80 of 80 account/Region pairs failed"
    assert "- 222222222222, us-east-1: RegionNotEnabled - opt in" in body
    assert body.count(": RegionNotEnabled - ") == org_sweep.SHOWN_FAILURES
    assert "... and 30 more" in body
