"""The reconciliation sweep on the local stack: missed reminders caught, duplicates handled once."""

from __future__ import annotations

import json

import boto3
import pytest

from certrelay import sweep as sweep_module
from certrelay.local.engine import LocalEngine
from tests.statemachine.conftest import EVENTS

SCHEDULE = "SweepFunctionDaily"
# The demo fleet's certificates on a threshold day (45,30,15,7,3,1) when the engine starts.
ON_A_THRESHOLD_DAY = {
    "web.internal.example.com": 30,
    "legacy.example.com": 15,
    "www.example.com": 7,
    "forgotten.internal.example.com": 45,
}


def reminders(engine: LocalEngine) -> dict[str, int]:
    """Domain -> DaysToExpiry of every reminder the sweep put on the bus."""
    return {
        e["detail"]["CommonName"]: e["detail"]["DaysToExpiry"]
        for e in engine.bus
        if e["source"] == "certrelay.sweep"
    }


def test_sweep_catches_every_reminder_acm_did_not_send(engine: LocalEngine):
    run = engine.fire_schedule(SCHEDULE)

    assert run.error is None, run.answer
    assert run.answer["due"] == run.answer["sent"] == len(ON_A_THRESHOLD_DAY)
    assert run.answer["listed"] >= len(ON_A_THRESHOLD_DAY)
    assert reminders(engine) == ON_A_THRESHOLD_DAY
    assert len(run.executions) == len(ON_A_THRESHOLD_DAY), "the rule starts one run per reminder"
    assert {e.status for e in run.executions} == {"SUCCEEDED"}
    assert all("Notify Owners" in e.states for e in run.executions)
    told = {n["recipient"] for n in engine.notifications()}
    assert {"web-team@example.com", "site-team@example.com"} <= told


def test_reminder_acm_did_send_and_the_sweeps_copy_make_one_notice(engine: LocalEngine):
    """The gate's side of the promise. "ACM's" event here is re-stamped with the day count the
    sweep also computes, so this cannot show that ACM rounds DaysToExpiry the same way (the
    sweep section of docs/operations.md lists that as a known limit)."""
    acm_event = json.loads((EVENTS / "approaching-expiration.json").read_text(encoding="utf-8"))
    (first,) = engine.send(engine.certificate_event(acm_event, "public-site")).executions
    notices = len(engine.notifications())

    run = engine.fire_schedule(SCHEDULE)

    (again,) = [e for e in run.executions if e.output["certificate"]["domain"] == "www.example.com"]
    assert first.states[-1] == "Owners Notified"
    assert again.states == ["Triage Event", "Record Event", "Already Handled"]
    later = {n["recipient"] for n in engine.notifications()[notices:]}
    assert "site-team@example.com" not in later, "the duplicate sends nothing"
    assert {"web-team@example.com", "legacy-owners@example.com"} <= later, "the others do"
    mails_to_site = [n for n in engine.notifications() if n["recipient"] == "site-team@example.com"]
    assert len(mails_to_site) == 1


def test_sweep_pages_through_list_certificates(engine: LocalEngine, monkeypatch):
    monkeypatch.setattr(sweep_module, "PAGE_SIZE", 2)
    acm = boto3.client("acm", region_name=engine.fleet.region)
    first = acm.list_certificates(MaxItems=2, Includes={"keyTypes": ["RSA_2048", "EC_prime256v1"]})

    run = engine.fire_schedule(SCHEDULE)

    assert "NextToken" in first
    assert len(first["CertificateSummaryList"]) == 2
    issued = [
        c
        for page in acm.get_paginator("list_certificates").paginate(
            CertificateStatuses=["ISSUED"], Includes={"keyTypes": list(sweep_module._KEY_TYPES)}
        )
        for c in page["CertificateSummaryList"]
    ]
    assert run.answer["listed"] == len(issued) > 2
    assert reminders(engine) == ON_A_THRESHOLD_DAY


def test_only_the_sweep_source_may_stand_in_for_acm():
    from certrelay.errors import UnsupportedEvent
    from certrelay.events import parse_event

    event = json.loads((EVENTS / "expired.json").read_text(encoding="utf-8"))
    event["source"] = "certrelay.sweep"
    with pytest.raises(UnsupportedEvent, match="the sweep only sends"):
        parse_event(event)
