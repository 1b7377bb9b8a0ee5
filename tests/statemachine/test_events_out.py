"""Events out: one certrelay.* event per outcome on the default bus, in the documented schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

from moto.events.models import EventPattern

from certrelay import announcements
from certrelay.local import human
from certrelay.local.engine import LocalEngine
from tests.statemachine.conftest import EVENTS, send

EVENTS_OUT_DOC = Path(__file__).resolve().parents[2] / "docs" / "events-out.md"


def outcomes(engine: LocalEngine) -> list[str]:
    return [e["detail-type"] for e in engine.events_out()]


def renewed_event(engine: LocalEngine) -> dict:
    engine.renew("web-private")
    event = json.loads((EVENTS / "available.json").read_text(encoding="utf-8"))
    return engine.certificate_event(event, "web-private")


def test_an_approved_renewal_announces_each_step(engine: LocalEngine):
    (execution,) = human.send_and_decide(
        engine, renewed_event(engine), "approve", reason="CHG-7"
    ).executions

    assert outcomes(engine) == [
        "certrelay.owners-notified",
        "certrelay.approval-requested",
        "certrelay.approved",
        "certrelay.distributed",
    ]
    events = [announcements.parse(e) for e in engine.events_out()]
    assert {e.execution for e in events} == {execution.arn}
    assert {e.certificate.domain for e in events} == {"web.internal.example.com"}
    requested, approved, distributed = events[1:]
    assert isinstance(requested, announcements.ApprovalRequested)
    assert requested.approvers == ["web-lead@example.com"]
    assert requested.round == "request"
    assert isinstance(approved, announcements.Approved)
    assert approved.decision.approver == "web-lead@example.com"
    assert approved.decision.reason == "CHG-7"
    assert isinstance(distributed, announcements.DistributionResult)
    assert (distributed.distributed, distributed.failed) == (3, 0)


def test_a_rejection_says_who_and_why(engine: LocalEngine):
    human.send_and_decide(engine, renewed_event(engine), "reject", reason="freeze week")

    rejected = announcements.parse(engine.events_out()[-1])

    assert isinstance(rejected, announcements.Rejected)
    assert rejected.decision.approver == "web-lead@example.com"
    assert rejected.decision.reason == "freeze week"


def test_findings_are_announced_when_raised_and_when_resolved(engine: LocalEngine):
    send(engine, "renewal-action-required.json", "public-site", DaysToExpiry=30)
    send(engine, "available.json", "public-site")

    assert outcomes(engine) == [
        "certrelay.finding-raised",
        "certrelay.owners-notified",
        "certrelay.finding-resolved",
        "certrelay.owners-notified",
    ]
    raised, _, resolved, _ = [announcements.parse(e) for e in engine.events_out()]
    assert isinstance(raised, announcements.FindingRaised)
    assert isinstance(resolved, announcements.FindingResolved)
    assert raised.severity == "HIGH"
    assert resolved.finding_ids == raised.finding_ids


def test_an_ignored_event_announces_nothing(engine: LocalEngine):
    send(engine, "approaching-expiration.json", "web-private", DaysToExpiry=30)
    before = len(engine.events_out())
    send(engine, "approaching-expiration.json", "web-private", DaysToExpiry=30)  # duplicate

    assert len(engine.events_out()) == before


def example_rule() -> dict:
    """The example rule docs/events-out.md gives teams (the JSON block after its marker)."""
    text = EVENTS_OUT_DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- example-rule -->\s*```json\n(.*?)```", text, re.S)
    assert match, "docs/events-out.md lost its example rule"
    return json.loads(match.group(1))


def test_the_documented_example_rule_routes_what_it_says(engine: LocalEngine):
    send(engine, "renewal-action-required.json", "public-site", DaysToExpiry=30)
    pattern = EventPattern.load(json.dumps(example_rule()))

    matched = [e["detail-type"] for e in engine.events_out() if pattern.matches_event(e)]

    assert matched == ["certrelay.finding-raised"]


def test_the_schema_is_documented_for_every_outcome():
    text = EVENTS_OUT_DOC.read_text(encoding="utf-8")
    schema = json.dumps(announcements.json_schema())

    for outcome in announcements.OUTCOMES:
        assert f"`certrelay.{outcome}`" in text, f"events-out.md lacks certrelay.{outcome}"
        assert f'"{outcome}"' in schema
