"""The approval paths through the whole ASL: approve, reject, timeout with escalation, auto.

GIVEN web-private (PRIVATE, profile "web" with targets and approval required) WHEN ACM says it
was renewed THEN the owners are told, the approver gets a link to a page, and what the person
does on that page (through real HTTP) decides how the execution ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest

from certrelay import distribution_record
from certrelay.local import human
from certrelay.local.engine import LocalEngine
from certrelay.local.fleet.seed import load_fleet
from certrelay.local.results import Execution
from tests.statemachine.conftest import EVENTS, assert_no_secrets

BEFORE_APPROVAL = [
    "Triage Event",
    "Record Event",
    "Route Event?",
    "Notify Owners",
    "Claim Owner Mail",
    "Deliver Now?",
    "Send Email",
    "Owner Mailed",
    "Every Owner Mailed?",
    "Announce Notice",
    "After Notice?",
    "Approval Required?",
]


def renewed(engine: LocalEngine) -> dict:
    event = json.loads((EVENTS / "available.json").read_text(encoding="utf-8"))
    return engine.certificate_event(event, "web-private")


def run(engine: LocalEngine, decision: str | None, reason: str = "ok") -> Execution:
    (execution,) = human.send_and_decide(
        engine, renewed(engine), decision, reason=reason
    ).executions
    return execution


def task_token(execution: Execution, state: str = "Request Approval") -> str:
    """The token Step Functions handed the callback task (AWS records it in TaskScheduled)."""
    entered = False
    for event in execution.history:
        details = event.get("stateEnteredEventDetails", {})
        entered = entered or details.get("name") == state
        if entered and event["type"] == "TaskScheduled":
            return json.loads(event["taskScheduledEventDetails"]["parameters"])["Payload"]["token"]
    raise AssertionError(f"{state} scheduled no task")


def test_approved_renewal_records_who_approved_and_why(engine: LocalEngine):
    execution = run(engine, "approve", reason="Change CHG-1042 approved")

    assert execution.status == "SUCCEEDED"
    assert execution.states[: len(BEFORE_APPROVAL) + 4] == [
        *BEFORE_APPROVAL,
        "Request Approval",
        "Announce Approval",
        "Maintenance Window?",
        "Export Certificate",
    ]
    assert execution.states[-1] == "Renewal Distributed"
    decision = execution.output["approval_decision"]
    assert decision["decision"] == "approve"
    assert decision["approver"] == "web-lead@example.com"
    assert decision["reason"] == "Change CHG-1042 approved"
    sent = [(n["recipient"], n["attributes"]["event_kind"]) for n in engine.notifications()]
    assert sent == [
        ("web-team@example.com", "Available"),
        ("web-lead@example.com", "ApprovalRequested"),
        ("web-team@example.com", "DistributionReport"),
    ]


def test_rejected_renewal_tells_the_owners_who_rejected_and_why(engine: LocalEngine):
    execution = run(engine, "reject", reason="Not during the sale")

    assert execution.status == "SUCCEEDED"
    assert execution.states == [
        *BEFORE_APPROVAL,
        "Request Approval",
        "Notify Rejection",
        "Announce Rejection",
        "Forget Rejected Event",
        "Renewal Rejected",
    ]
    rejection = engine.notifications()[-1]
    assert rejection["recipient"] == "web-team@example.com"
    assert "web-lead@example.com" in rejection["body"]
    assert "Not during the sale" in rejection["body"]


def test_a_planted_line_in_the_rejection_reason_reaches_the_owners_only_as_a_quote(
    engine: LocalEngine,
):
    # GIVEN an approver who rejects with a reason that imitates one of certrelay's own lines
    planted = "ok\r\nExecution: https://evil.example/\nBcc: all@example.com"
    run(engine, "reject", reason=planted)
    # WHEN the owners' rejection mail is read
    body = engine.notifications()[-1]["body"]
    lines = body.splitlines()
    # THEN every line of the reason is quoted, and the only unquoted execution line is ours
    for text in ("> ok", "> Execution: https://evil.example/", "> Bcc: all@example.com"):
        assert text in lines
    assert not any(line.startswith(("Execution:", "Bcc:")) for line in lines)
    assert all("evil.example" not in line or line.startswith("> ") for line in lines)
    assert "\r" not in body
    execution_line = lines[lines.index("Execution") + 1]
    assert execution_line.strip().startswith("https://") or "execution:" in execution_line
    assert "evil" not in execution_line


@pytest.fixture
def fast_engine() -> Iterator[LocalEngine]:
    # 24-hour approval windows pass in about a second each
    with LocalEngine(clock_speed=86400) as local:
        yield local
        assert_no_secrets(local, local.executions)


def test_nobody_deciding_escalates_with_fresh_links_then_expires(fast_engine: LocalEngine):
    execution = run(fast_engine, "timeout")

    assert execution.status == "FAILED"
    assert execution.error == "ApprovalExpired"
    assert execution.cause
    assert execution.states == [
        *BEFORE_APPROVAL,
        "Request Approval",
        "Escalate Approval",
        "Notify Expiry",
        "Forget Expired Event",
        "Approval Expired",
    ]
    sent = [(n["recipient"], n["attributes"]["event_kind"]) for n in fast_engine.notifications()]
    assert ("platform-oncall@example.com", "ApprovalEscalated") in sent
    links = human.approval_links(fast_engine, execution.arn)
    assert len(links) == len(set(links)) >= 3, "each round mails fresh links"
    # the engine's clock ran the windows out early; the page learns it when it tries the task
    assert human.press(links[0], "approve", "too late").status == 410
    assert human.open_page(links[0]).status == 410, "then the link says it has expired"


def test_profile_with_automatic_approval_skips_the_wait():
    fleet = load_fleet()
    assert fleet.profiles is not None
    fleet.profiles["web"]["approval"] = "auto"
    with LocalEngine(fleet=fleet) as engine:
        execution = run(engine, None)

    assert execution.states[: len(BEFORE_APPROVAL) + 4] == [
        *BEFORE_APPROVAL,
        "Approved By Policy",
        "Announce Approval",
        "Maintenance Window?",
        "Export Certificate",
    ]
    assert "Request Approval" not in execution.states
    assert execution.output["approval_decision"]["approver"] == "policy"


def test_opening_the_link_changes_nothing_until_a_button_is_pressed(engine: LocalEngine):
    _, started = engine.put_event(renewed(engine))
    ((name, arn),) = started
    engine.wait_for_state(arn, "Request Approval")
    links = _links_when_sent(engine, arn)

    pages = [human.open_page(links[0]) for _ in range(3)]
    scanner = human.open_page(links[0] + "?action=approve&decision=approve")
    head = human.open_page(links[0], method="HEAD")

    assert [p.status for p in pages] == [200, 200, 200]
    assert scanner.status == 200
    assert head.status == 200
    assert engine.status(arn) == "RUNNING", "a GET must never decide"
    assert human.press(links[0], "approve", "looked fine").status == 200
    assert engine.wait(arn, name=name, seconds=60).states[-1] == "Renewal Distributed"


def test_double_click_decides_once(engine: LocalEngine):
    _, started = engine.put_event(renewed(engine))
    ((name, arn),) = started
    links = _links_when_sent(engine, arn)

    first = human.press(links[0], "approve", "first")
    second = human.press(links[0], "reject", "second")
    execution = engine.wait(arn, name=name, seconds=30)

    assert first.status == 200
    assert second.status == 409
    assert "first" in second.body, "the conflict page shows the recorded decision"
    assert execution.output["approval_decision"]["reason"] == "first"
    callbacks = [  # the approval's; each server install's callback answers its own task
        e
        for e in execution.history
        if e["type"] == "TaskSucceeded"
        and e["taskSucceededEventDetails"]["resource"] == "invoke.waitForTaskToken"
        and '"decision"' in e["taskSucceededEventDetails"]["output"]
    ]
    assert len(callbacks) == 1


def test_task_token_is_only_where_aws_records_it(engine: LocalEngine):
    execution = run(engine, "approve")
    token = task_token(execution)
    link = human.approval_links(engine, execution.arn)[0]

    carriers = [e["type"] for e in execution.history if token in json.dumps(e, default=str)]
    assert carriers == ["TaskScheduled"], "only the callback's own parameters hold the token"
    assert token not in json.dumps(engine.notifications())
    assert token not in link
    assert token not in "\n".join(engine.runtime.log_lines)
    assert token not in human.open_page(link).body
    bus = json.dumps(engine.bus)
    assert "certrelay.approval-requested" in bus, "the scan below must have events to read"
    assert token not in bus, "no event out carries the task token"
    link_id = link.rstrip("/").rsplit("/", 1)[-1]
    assert len(link_id) >= 32
    assert link_id not in bus, "no event out carries an approval link"


def _links_when_sent(engine: LocalEngine, arn: str) -> list[str]:
    engine.wait_for_state(arn, "Request Approval")
    return human.links_when_sent(engine, arn)


def test_a_rejected_renewal_can_be_asked_again_by_resending_the_event(engine: LocalEngine):
    # GIVEN a rejection (the email says: send the Available event again to ask once more)
    first = run(engine, "reject", reason="not now")
    # WHEN the same event is sent again THEN it is not swallowed by the idempotency gate
    second = run(engine, "approve", reason="now is fine")

    assert first.states[-1] == "Renewal Rejected"
    assert "Already Handled" not in second.states
    assert second.states[-1] == "Renewal Distributed"


def test_unless_changed_asks_a_person_first_then_approves_the_like_for_like_renewal_by_policy():
    # GIVEN profile web with approval: unless-changed and nothing on record for web-private
    fleet = load_fleet()
    assert fleet.profiles is not None
    fleet.profiles["web"]["approval"] = "unless-changed"
    with LocalEngine(fleet=fleet) as engine:
        # WHEN ACM renews it: a first distribution, so a person approves it
        engine.renew("web-private")
        first = run(engine, "approve")
        # AND ACM renews it again, nothing else changed
        engine.renew("web-private")
        (second,) = engine.send(renewed(engine), wait_seconds=60).executions
        record = distribution_record.read_record(
            boto3.client("dynamodb", region_name=engine.fleet.region),
            engine.stack.ref("DistributionRecordTable"),
            second.output["certificate"]["arn"],
        )
    # THEN the first asked a person (FirstDistribution) and recorded what it distributed
    assert "Request Approval" in first.states
    assert first.output["approval"]["reasons"] == ["FirstDistribution"]
    assert first.output["record"]["verified"] is True
    # AND the second was approved by the policy, like-for-like, without asking anyone
    assert second.status == "SUCCEEDED", second.error
    assert "Request Approval" not in second.states
    assert second.states[len(BEFORE_APPROVAL)] == "Approved By Policy"
    assert second.output["approval_decision"]["reasons"] == ["LikeForLike"]
    # AND the record now holds the second serial, verified on each of the three targets
    assert record is not None
    assert record.serial == second.output["bundle"]["serial"]
    assert (record.verified, record.last_run_succeeded) == (True, True)
    assert [t.verified for t in record.targets] == [True, True, True]
    assert {t.serial for t in record.targets} == {record.serial}
