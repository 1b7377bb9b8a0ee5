"""Nothing lost: a run that could not do its event's work releases it, and a redelivery finishes.

GIVEN the demo fleet in a fresh local stack, WHEN a step fails after Record Event (one owner's
mail, the export), THEN the run reports to operations and releases the event's record, so the
same event sent again (ACM's redelivery, the daily sweep) runs again; owners already mailed are
not mailed twice, and once everything is done a further copy ends in Already Handled.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import boto3
import pytest

from certrelay.local import human
from certrelay.local.engine import LocalEngine
from certrelay.local.fleet.seed import load_fleet
from certrelay.local.results import Execution
from tests.statemachine.conftest import EVENTS, assert_no_secrets, only_execution, send

LEGACY, PAYMENTS = "legacy-owners@example.com", "payments-team@example.com"
WEB = "web-private"
ALREADY_HANDLED = ["Triage Event", "Record Event", "Already Handled"]


class RefusingInbox:
    """SNS refuses to publish to some recipients, with an error code SNS really returns."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, recipients: set[str], code: str) -> None:
        from moto.sns.exceptions import SNSException
        from moto.sns.models import SNSBackend

        refusal = type(code, (SNSException,), {"code": code})
        original = SNSBackend.publish
        self.recipients = set(recipients)
        self.refused: list[str] = []

        def publish(backend: SNSBackend, *args: Any, **kwargs: Any) -> str:
            recipient = (kwargs.get("message_attributes") or {}).get("recipient", {})
            if recipient.get("Value") in self.recipients:
                self.refused.append(recipient["Value"])
                raise refusal(f"{code} (refused by the test)")
            return original(backend, *args, **kwargs)

        monkeypatch.setattr(SNSBackend, "publish", publish)

    def heal(self) -> None:
        self.recipients.clear()


def owner_mails(engine: LocalEngine) -> Counter[str]:
    """How many mails each owner got (the operations reports go to the fallback owner)."""
    fallback = engine.fleet.fallback_owner
    return Counter(
        str(n["recipient"]) for n in engine.notifications() if n["recipient"] != fallback
    )


def owner_notices(engine: LocalEngine) -> list[dict[str, Any]]:
    """The owner mails Notify Owners sent (approval requests and reports are other kinds)."""
    return [n for n in engine.notifications() if n["attributes"].get("event_kind") == "Available"]


def reports(engine: LocalEngine) -> list[dict[str, Any]]:
    return [n for n in engine.notifications() if n["recipient"] == engine.fleet.fallback_owner]


def event_table(engine: LocalEngine) -> list[dict[str, Any]]:
    """Every item in the stack's event table: records (with a route) and per-owner markers."""
    assert engine.stack is not None
    name = engine.stack.resources["EventTable"].ref
    items = boto3.client("dynamodb", region_name=engine.fleet.region).scan(
        TableName=name, ConsistentRead=True
    )["Items"]
    return [{k: next(iter(v.values())) for k, v in item.items()} for item in items]


def records(engine: LocalEngine) -> list[dict[str, Any]]:
    return [item for item in event_table(engine) if "route" in item]


def markers(engine: LocalEngine) -> list[dict[str, Any]]:
    return [item for item in event_table(engine) if "#to#" in item["pk"]]


def inner(execution: Execution) -> Counter[str]:
    """The states entered inside Notify Owners (their order interleaves across owners)."""
    names = {
        "Claim Owner Mail",
        "Send Email",
        "Owner Mailed",
        "Owner Already Mailed",
        "Release Owner Mail",
        "Owner Not Mailed",
    }
    return Counter(state for state in execution.states if state in names)


def test_one_owners_failed_mail_releases_the_event_and_a_redelivery_mails_only_them(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN an imported certificate with two owners, and SNS refusing one owner's mail
    # (KMSDisabled: not transient, so it is not retried)
    inbox = RefusingInbox(monkeypatch, {PAYMENTS}, "KMSDisabled")

    # WHEN ACM's reminder arrives
    first = only_execution(send(engine, "approaching-expiration.json", "legacy-imported"))

    # THEN the other owner is mailed, the run fails and tells operations, and releases the event
    assert inbox.refused == [PAYMENTS]
    assert first.status == "FAILED"
    assert first.error == "OwnersNotNotified"
    assert first.states[-5:] == [
        "Every Owner Mailed?",
        "Owners Not Mailed",
        "Forget Failed Event",
        "Report Failure",
        "Execution Failed",
    ]
    assert inner(first) == Counter(
        {
            "Claim Owner Mail": 2,
            "Send Email": 2,
            "Owner Mailed": 1,
            "Release Owner Mail": 1,
            "Owner Not Mailed": 1,
        }
    )
    failed_sends = [
        e["taskFailedEventDetails"]["error"] for e in first.history if e["type"] == "TaskFailed"
    ]
    assert failed_sends == ["SNS.KMSDisabledException"], "the refusal is not retried"
    assert owner_mails(engine) == Counter({LEGACY: 1})
    (report,) = reports(engine)
    assert "OwnersNotNotified" in report["body"]
    assert records(engine) == [], "the event's record was released"
    assert len(markers(engine)) == 1, "only the owner reached keeps a marker"

    # WHEN the same event is sent again, SNS working again
    inbox.heal()
    second = only_execution(send(engine, "approaching-expiration.json", "legacy-imported"))

    # THEN only the owner not reached is mailed, and the run succeeds
    assert second.status == "SUCCEEDED"
    assert second.states[-1] == "Owners Notified"
    assert inner(second) == Counter(
        {"Claim Owner Mail": 2, "Send Email": 1, "Owner Mailed": 1, "Owner Already Mailed": 1}
    )
    assert owner_mails(engine) == Counter({LEGACY: 1, PAYMENTS: 1})
    assert len(records(engine)) == 1
    assert len(markers(engine)) == 2

    # WHEN a third copy arrives THEN the event is handled already and nobody is mailed
    third = only_execution(send(engine, "approaching-expiration.json", "legacy-imported"))
    assert third.states == ALREADY_HANDLED
    assert owner_mails(engine) == Counter({LEGACY: 1, PAYMENTS: 1})
    assert len(reports(engine)) == 1


def test_a_throttled_kms_key_is_retried_under_the_name_the_integration_raises(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN SNS answers one owner's first publish with KMSThrottling (transient)
    inbox = RefusingInbox(monkeypatch, {PAYMENTS}, "KMSThrottling")
    healed_after_one = inbox.refused

    from moto.sns.models import SNSBackend

    refusing = SNSBackend.publish

    def once(backend: SNSBackend, *args: Any, **kwargs: Any) -> str:
        try:
            return refusing(backend, *args, **kwargs)
        finally:
            if healed_after_one:
                inbox.heal()

    monkeypatch.setattr(SNSBackend, "publish", once)

    # WHEN ACM's reminder arrives
    execution = only_execution(send(engine, "approaching-expiration.json", "legacy-imported"))

    # THEN Send Email's Retry matched the error by its real name and both owners were mailed once
    failures = [
        e["taskFailedEventDetails"]["error"] for e in execution.history if e["type"] == "TaskFailed"
    ]
    assert failures == ["SNS.KMSThrottlingException"]
    assert execution.status == "SUCCEEDED"
    assert inner(execution)["Send Email"] == 2, "a Retry stays inside its state"
    assert owner_mails(engine) == Counter({LEGACY: 1, PAYMENTS: 1})


def test_a_failed_export_releases_the_event_and_a_redelivery_runs_again(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN a renewed private certificate, and ACM refusing the export role (not transient)
    from moto.acm.models import AWSCertificateManagerBackend as ACMBackend
    from moto.core.exceptions import JsonRESTError

    original = ACMBackend.export_certificate
    refusing = [True]

    def export_certificate(self: ACMBackend, *args: Any, **kwargs: Any) -> Any:
        if refusing:
            raise JsonRESTError("AccessDeniedException", "not authorized to export")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ACMBackend, "export_certificate", export_certificate)
    engine.renew(WEB)
    event = engine.certificate_event(
        json.loads((EVENTS / "available.json").read_text(encoding="utf-8")), WEB
    )

    # WHEN the renewal is approved
    (first,) = human.send_and_decide(engine, event, "approve").executions

    # THEN the run reports the failed export to operations and releases the event
    assert first.status == "FAILED"
    assert first.states[-4:] == [
        "Export Certificate",
        "Forget Failed Event",
        "Report Failure",
        "Execution Failed",
    ]
    assert records(engine) == []
    assert len(reports(engine)) == 1
    notices = owner_notices(engine)
    assert notices, "the owners heard of the renewal before the export failed"

    # WHEN ACM's event arrives again, the export role fixed, and is approved again
    refusing.clear()
    (second,) = human.send_and_decide(engine, event, "approve").executions

    # THEN it runs the whole way, without mailing the owners their notice a second time
    assert second.states[:3] == ["Triage Event", "Record Event", "Route Event?"]
    assert second.status == "SUCCEEDED"
    assert second.states[-1] == "Renewal Distributed"
    assert "Owner Already Mailed" in second.states
    assert "Owner Mailed" not in second.states
    assert len(records(engine)) == 1
    assert owner_notices(engine) == notices


def test_an_alert_without_its_finding_releases_the_event_and_a_redelivery_raises_it(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN an expired certificate in use, and Security Hub refusing the import (not transient)
    from moto.core.exceptions import JsonRESTError
    from moto.securityhub.models import SecurityHubBackend

    original = SecurityHubBackend.batch_import_findings
    refusing = [True]

    def batch_import_findings(self: SecurityHubBackend, *args: Any, **kwargs: Any) -> Any:
        if refusing:
            raise JsonRESTError("AccessDeniedException", "not authorized to import findings")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SecurityHubBackend, "batch_import_findings", batch_import_findings)

    # WHEN ACM says it expired
    first = only_execution(send(engine, "expired.json", "expired-imported"))

    # THEN the owners are alerted, but the run fails with Security Hub's error and is released
    assert first.status == "FAILED"
    assert first.states[-6:] == [
        "Announce Notice",
        "After Notice?",
        "Finding Not Raised",
        "Forget Failed Event",
        "Report Failure",
        "Execution Failed",
    ]
    assert owner_mails(engine) == Counter({"partner-integrations@example.com": 1})
    assert engine.findings() == []
    assert records(engine) == []

    # WHEN the event arrives again, Security Hub working again
    refusing.clear()
    second = only_execution(send(engine, "expired.json", "expired-imported"))

    # THEN the finding is raised and the owners are not alerted a second time
    assert second.status == "SUCCEEDED"
    assert second.states[-1] == "Owners Alerted"
    assert "Owner Already Mailed" in second.states
    assert [(f["severity"], f["status"]) for f in engine.findings()] == [("CRITICAL", "ACTIVE")]
    assert owner_mails(engine) == Counter({"partner-integrations@example.com": 1})


def test_a_retried_approval_request_mails_each_approver_once():
    # GIVEN a profile with two approvers, and SNS throttling the second one's mail once
    fleet = load_fleet()
    assert fleet.profiles is not None
    fleet.profiles["web"]["approvers"] = ["web-lead@example.com", "web-deputy@example.com"]
    with LocalEngine(fleet=fleet, clock_speed=50) as engine, pytest.MonkeyPatch.context() as mp:
        inbox = RefusingInbox(mp, {"web-deputy@example.com"}, "KMSThrottling")
        from moto.sns.models import SNSBackend

        refusing = SNSBackend.publish

        def once(backend: SNSBackend, *args: Any, **kwargs: Any) -> str:
            try:
                return refusing(backend, *args, **kwargs)
            finally:
                if inbox.refused:
                    inbox.heal()

        mp.setattr(SNSBackend, "publish", once)
        engine.renew(WEB)
        event = engine.certificate_event(
            json.loads((EVENTS / "available.json").read_text(encoding="utf-8")), WEB
        )

        # WHEN the renewal asks for approval: the first attempt fails on the second mail and
        # Step Functions retries Request Approval with the same task token
        (execution,) = human.send_and_decide(engine, event, "approve").executions

        # THEN the retry mailed only the approver not reached; each got one mail and one link
        failures = [
            e["taskFailedEventDetails"]["error"]
            for e in execution.history
            if e["type"] == "TaskFailed"
        ]
        assert failures == ["ServiceThrottled"]
        assert inbox.refused == ["web-deputy@example.com"]
        requests = [
            n["recipient"]
            for n in engine.notifications()
            if n["attributes"].get("event_kind") == "ApprovalRequested"
        ]
        assert sorted(requests) == ["web-deputy@example.com", "web-lead@example.com"]
        assert len(human.approval_links(engine, execution.arn)) == 2
        assert execution.states[-1] == "Renewal Distributed"
        assert_no_secrets(engine, engine.executions)


def test_an_owner_missing_finding_security_hub_refuses_does_not_fail_the_notice(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN a certificate nobody owns, and Security Hub refusing every import
    from moto.core.exceptions import JsonRESTError
    from moto.securityhub.models import SecurityHubBackend

    def batch_import_findings(self: SecurityHubBackend, *args: Any, **kwargs: Any) -> Any:
        raise JsonRESTError("AccessDeniedException", "not authorized to import findings")

    monkeypatch.setattr(SecurityHubBackend, "batch_import_findings", batch_import_findings)

    # WHEN its expiry reminder arrives (the plan raises OwnerMissing, a finding it does not require)
    execution = only_execution(send(engine, "approaching-expiration.json", "orphan"))

    # THEN the fallback owner is told and the run ends as notified: only a required finding fails it
    assert execution.output["finding"]["required"] is False
    assert execution.status == "SUCCEEDED"
    assert execution.states[-3:] == ["Announce Notice", "After Notice?", "Owners Notified"]
    assert "findings_error" in execution.output
    assert engine.findings() == []
