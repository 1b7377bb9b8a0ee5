"""One test per path of the state machine: the ordered states entered and the final status.

GIVEN the demo fleet in a fresh local stack, WHEN an ACM event arrives as ACM would send it,
THEN the real ASL takes the path DESIGN.md §4 gives and the right people get the right email.
"""

from __future__ import annotations

import json

from certrelay.local.engine import LocalEngine
from tests.statemachine.conftest import EVENTS, only_execution, send

NOTIFIED = ["Triage Event", "Record Event", "Route Event?", "Notify Owners"]
# one owner, inside Notify Owners
MAILED = ["Claim Owner Mail", "Deliver Now?", "Send Email", "Owner Mailed"]


def emails_of(engine: LocalEngine) -> list[tuple[str | None, str | None]]:
    return [(n["recipient"], n["attributes"].get("severity")) for n in engine.notifications()]


def test_imported_certificate_at_a_threshold_notifies_each_owner_separately(engine: LocalEngine):
    execution = only_execution(send(engine, "approaching-expiration.json", "legacy-imported"))

    assert execution.status == "SUCCEEDED"
    assert execution.states[:4] == NOTIFIED
    assert sorted(execution.states[4:12]) == sorted(MAILED * 2), "mails run side by side"
    assert execution.states[12:] == [
        "Every Owner Mailed?",
        "Announce Notice",
        "After Notice?",
        "Owners Notified",
    ]
    assert execution.output["reason"] == "ImportedExpiring"
    assert sorted(emails_of(engine)) == [
        ("legacy-owners@example.com", "MEDIUM"),
        ("payments-team@example.com", "MEDIUM"),
    ]
    for message in engine.notifications():
        assert message["attributes"]["event_kind"] == "ApproachingExpiration"
        assert message["attributes"]["certificate"] == engine.certificates["legacy-imported"].arn
        assert execution.arn in message["body"], "the email links to its execution"


def test_managed_certificate_approaching_expiry_is_informational(engine: LocalEngine):
    execution = only_execution(send(engine, "approaching-expiration.json", "public-site"))

    assert execution.states[-1] == "Owners Notified"
    assert execution.output["reason"] == "ManagedRenewalPending"
    assert emails_of(engine) == [("site-team@example.com", "INFORMATIONAL")]


def test_expired_certificate_in_use_alerts_owners_as_critical(engine: LocalEngine):
    execution = only_execution(send(engine, "expired.json", "expired-imported"))

    assert execution.status == "SUCCEEDED"
    assert execution.states == [
        "Triage Event",
        "Record Event",
        "Route Event?",
        "Raise Finding",
        "Notify Owners",
        *MAILED,
        "Every Owner Mailed?",
        "Announce Notice",
        "After Notice?",
        "Owners Alerted",
    ]
    assert execution.output["route"] == "attention"
    assert emails_of(engine) == [("partner-integrations@example.com", "CRITICAL")]
    assert [(f["severity"], f["status"]) for f in engine.findings()] == [("CRITICAL", "ACTIVE")]


def test_renewal_action_required_alerts_owners_as_high(engine: LocalEngine):
    execution = only_execution(send(engine, "renewal-action-required.json", "web-private"))

    assert execution.states[-1] == "Owners Alerted"
    assert execution.output["reason"] == "RenewalActionRequired"
    assert set(emails_of(engine)) == {("web-team@example.com", "HIGH")}


def test_revoked_certificate_alerts_owners_as_critical(engine: LocalEngine):
    engine.revoke("public-site")  # GIVEN ACM has revoked it, as the event says

    execution = only_execution(send(engine, "revoked.json", "public-site"))

    assert execution.states[-1] == "Owners Alerted"
    assert emails_of(engine) == [("site-team@example.com", "CRITICAL")]


def test_certificate_without_owner_goes_to_the_fallback_owner(engine: LocalEngine):
    execution = only_execution(send(engine, "approaching-expiration.json", "orphan"))

    assert execution.states[-1] == "Owners Notified"
    assert "OwnerMissing" in execution.output["reasons"]
    assert [r for r, _ in emails_of(engine)] == [engine.fleet.fallback_owner]


def test_already_renewed_certificate_needs_nothing(engine: LocalEngine):
    # GIVEN orphan expires in 45 days WHEN a stale event says 30 days THEN ACM has renewed it
    execution = only_execution(
        send(engine, "approaching-expiration.json", "orphan", DaysToExpiry=30)
    )

    assert execution.states == ["Triage Event", "Record Event", "Route Event?", "Nothing To Do"]
    assert execution.output["reason"] == "AlreadyRenewed"
    assert engine.notifications() == []


def test_rule_filters_approaching_expiration_on_a_day_that_is_not_a_threshold(
    engine: LocalEngine,
):
    result = send(engine, "approaching-expiration.json", "public-site", DaysToExpiry=31)

    assert result.matched_rules == []
    assert result.executions == []


def test_rule_ignores_events_from_another_account(engine: LocalEngine):
    event = engine.certificate_event(
        json.loads((EVENTS / "expired.json").read_text()), "expired-imported"
    )
    event["account"] = "999999999999"

    assert engine.send(event).executions == []


def test_same_event_twice_is_handled_once(engine: LocalEngine):
    first = only_execution(send(engine, "approaching-expiration.json", "legacy-imported"))
    emails_after_first = len(engine.notifications())
    second = only_execution(send(engine, "approaching-expiration.json", "legacy-imported"))

    assert first.states[-1] == "Owners Notified"
    assert second.states == ["Triage Event", "Record Event", "Already Handled"]
    assert second.status == "SUCCEEDED"
    assert len(engine.notifications()) == emails_after_first == 2


def test_deleted_certificate_tells_the_fallback_owner(engine: LocalEngine):
    event = json.loads((EVENTS / "expired.json").read_text())
    event["account"] = engine.fleet.account
    event["region"] = engine.fleet.region  # the sample's ARN names a certificate ACM lacks

    execution = only_execution(engine.send(event))

    assert execution.states[-1] == "Owners Notified"
    assert execution.output["reason"] == "CertificateNotFound"
    assert [r for r, _ in emails_of(engine)] == [engine.fleet.fallback_owner]


def test_malformed_event_is_rejected_without_retry_and_reported(engine: LocalEngine):
    event = engine.certificate_event(
        json.loads((EVENTS / "expired.json").read_text()), "expired-imported"
    )
    event["resources"] = []

    execution = only_execution(engine.send(event))

    assert execution.status == "FAILED"
    assert execution.states == ["Triage Event", "Report Rejected Event", "Event Rejected"]
    assert execution.error == "MalformedEvent"
    attempts = [e for e in execution.history if e["type"] == "LambdaFunctionFailed"] + [
        e for e in execution.history if e["type"] == "TaskFailed"
    ]
    assert len(attempts) == 1, "a malformed event is not retried"
    (report,) = engine.notifications()
    assert report["recipient"] == engine.fleet.fallback_owner
    assert "MalformedEvent" in report["body"]


def test_transient_acm_error_is_retried_by_the_state_machine(engine: LocalEngine, monkeypatch):
    # GIVEN ACM answers the first DescribeCertificate with a transient error that the SDK itself
    # does not retry (throttling is retried inside boto3 first, so it rarely reaches the ASL)
    from moto.acm.models import AWSCertificateManagerBackend as ACMBackend
    from moto.core.exceptions import JsonRESTError

    original = ACMBackend.describe_certificate
    calls = []

    def throttled_once(self, arn):
        calls.append(arn)
        if len(calls) == 1:
            raise JsonRESTError("RequestInProgressException", "The request is in progress")
        return original(self, arn)

    monkeypatch.setattr(ACMBackend, "describe_certificate", throttled_once)

    # WHEN the event arrives
    execution = only_execution(send(engine, "expired.json", "expired-imported"))

    # THEN triage failed once with the retryable error, was retried, and the owners were alerted
    failures = [e for e in execution.history if e["type"] == "TaskFailed"]
    assert [f["taskFailedEventDetails"]["error"] for f in failures] == ["ServiceThrottled"]
    assert execution.states[:2] == ["Triage Event", "Record Event"]
    assert execution.states[-1] == "Owners Alerted"
    assert len(calls) == 2


def test_the_same_problem_twice_is_one_finding_and_a_renewal_resolves_it(engine: LocalEngine):
    # GIVEN ACM asks for action on two different days (two events, one problem)
    send(engine, "renewal-action-required.json", "public-site", DaysToExpiry=30)
    send(engine, "renewal-action-required.json", "public-site", DaysToExpiry=15)
    raised = engine.findings()
    # WHEN ACM then renews the certificate
    renewal = only_execution(send(engine, "available.json", "public-site"))

    assert [(f["severity"], f["status"]) for f in raised] == [("HIGH", "ACTIVE")]
    assert "Resolve Finding" in renewal.states
    assert [(f["id"], f["status"]) for f in engine.findings()] == [(raised[0]["id"], "ARCHIVED")]


def test_certificate_without_owner_raises_a_low_finding(engine: LocalEngine):
    execution = only_execution(send(engine, "approaching-expiration.json", "orphan"))

    assert "Raise Finding" in execution.states
    assert [f["severity"] for f in engine.findings()] == ["LOW"]


INCONSISTENT = [
    "Triage Event",
    "Record Event",
    "Route Event?",
    "Report Inconsistent Event",
    "Event Inconsistent",
]


def ops_messages(engine: LocalEngine) -> list[tuple[str, str]]:
    """(subject, body) of every message the stack published to its operations topic."""
    from moto.sns.models import sns_backends

    topic = sns_backends[engine.fleet.account][engine.fleet.region].topics[
        engine._require_stack().ref("OpsTopic")
    ]
    return [(subject, body) for _id, body, subject, _attrs, _group in topic.sent_notifications]


def test_revoked_event_for_an_issued_certificate_is_reported_to_operations_only(
    engine: LocalEngine,
):
    # GIVEN public-site, which ACM says is ISSUED, WHEN a Revoked event about it arrives
    execution = only_execution(send(engine, "revoked.json", "public-site"))

    # THEN operations hear of the contradiction; no owner email, no finding, no CRITICAL
    assert execution.status == "SUCCEEDED"
    assert execution.states == INCONSISTENT
    assert execution.output["reason"] == "EventInconsistent"
    ((subject, body),) = ops_messages(engine)
    assert subject == "[certrelay] an ACM event contradicts ACM"
    assert "ACM says status ISSUED with no revocation date" in body
    assert engine.certificates["public-site"].arn in body
    assert execution.arn in body
    assert [n for n in engine.notifications() if n["recipient"]] == []
    assert engine.findings() == []


def test_the_real_revocation_after_an_inconsistent_one_is_still_handled(engine: LocalEngine):
    # GIVEN a Revoked event arrived before ACM revoked the certificate
    early = only_execution(send(engine, "revoked.json", "public-site"))
    # WHEN ACM then revokes it and sends the same event again
    engine.revoke("public-site")
    real = only_execution(send(engine, "revoked.json", "public-site"))

    # THEN the early one did not mark the real one as handled
    assert early.states == INCONSISTENT
    assert real.states[-1] == "Owners Alerted"
    assert [f["severity"] for f in engine.findings()] == ["CRITICAL"]


def foreign(engine: LocalEngine, **changes: object) -> dict[str, object]:
    event = engine.certificate_event(
        json.loads((EVENTS / "revoked.json").read_text()), "public-site"
    )
    return {**event, **changes}


def assert_rejected_as_foreign(engine: LocalEngine, execution, named: str) -> None:
    assert execution.status == "FAILED"
    assert execution.states == ["Triage Event", "Report Rejected Event", "Event Rejected"]
    assert execution.error == "ForeignEvent"
    assert named in (execution.cause or "")
    (report,) = engine.notifications()
    assert report["recipient"] == engine.fleet.fallback_owner
    assert "ForeignEvent" in report["body"]
    assert engine.findings() == []


def test_event_from_another_account_started_directly_is_rejected_as_foreign(
    engine: LocalEngine,
):
    # GIVEN the rule would filter it, WHEN someone starts the state machine with it anyway
    execution = engine.start(foreign(engine, account="999999999999"))

    assert_rejected_as_foreign(engine, execution, "account 999999999999")


def test_event_from_another_region_is_rejected_as_foreign(engine: LocalEngine):
    execution = engine.start(foreign(engine, region="eu-west-1"))

    assert_rejected_as_foreign(engine, execution, "region eu-west-1")


def test_event_naming_another_accounts_certificate_is_rejected_as_foreign(engine: LocalEngine):
    # GIVEN an event from this account that names a certificate of account 999999999999
    theirs = engine.certificates["public-site"].arn.replace(engine.fleet.account, "999999999999")

    # WHEN it comes through the stack's own rule
    execution = only_execution(engine.send(foreign(engine, resources=[theirs])))

    assert_rejected_as_foreign(engine, execution, "999999999999")
