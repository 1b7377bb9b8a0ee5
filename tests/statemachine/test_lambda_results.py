"""Every Lambda result in a real execution history matches its state's closed model (HIS-02).

The engine fixture holds every statemachine test's histories to workflow.FUNCTION_RESULTS and
CALLBACK_RESULTS (conftest.assert_lambda_results_match_their_models); these runs make sure the
check sees the results of the approve → export → distribute path, a rejection, a finding and a
plain notice, and that it refuses a result with a key its model does not declare.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from certrelay.local import human
from certrelay.local.engine import LocalEngine
from certrelay.local.results import Execution
from tests.statemachine.conftest import (
    EVENTS,
    assert_lambda_results_match_their_models,
    only_execution,
    send,
)

WEB = "web-private"


def decide_renewal(engine: LocalEngine, decision: str) -> Execution:
    engine.renew(WEB)
    event = json.loads((EVENTS / "available.json").read_text(encoding="utf-8"))
    event = engine.certificate_event(event, WEB)
    (execution,) = human.send_and_decide(engine, event, decision, reason="checked").executions
    return execution


def test_an_approved_distribution_and_a_finding_return_only_what_their_models_declare(
    engine: LocalEngine,
):
    # GIVEN a renewal approved and distributed to a bucket and two servers, and an expired cert
    distributed = decide_renewal(engine, "approve")
    expired = only_execution(send(engine, "expired.json", "expired-imported"))
    assert (distributed.status, expired.status) == ("SUCCEEDED", "SUCCEEDED")
    # WHEN their histories' Lambda results are checked against the result models
    checked = assert_lambda_results_match_their_models([distributed, expired])
    # THEN each function's answer, and each callback's, matched its closed model
    assert checked >= {
        "Triage Event",
        "Request Approval",
        "Request Approval (callback)",
        "Export Certificate",
        "Copy To Bucket",
        "Send Install Command",
        "Send Install Command (callback)",
        "Report Distribution",
        "Record Distribution",
        "Close Findings",
        "Raise Finding",
    }


def test_a_rejection_and_a_plain_notice_return_only_what_their_models_declare(
    engine: LocalEngine,
):
    # GIVEN a rejected renewal, and an imported certificate's expiry notice (Notify Owners only)
    rejected = decide_renewal(engine, "reject")
    notice = only_execution(send(engine, "approaching-expiration.json", "legacy-imported"))
    # WHEN their histories' Lambda results are checked
    checked = assert_lambda_results_match_their_models([rejected, notice])
    # THEN the notify function's rejection and triage's notice matched their models
    assert "Notify Rejection" in rejected.states
    assert notice.states[:4] == ["Triage Event", "Record Event", "Route Event?", "Notify Owners"]
    assert checked >= {"Triage Event", "Request Approval", "Notify Rejection"}


def history(state: str, resource: str, output: dict[str, Any]) -> list[dict[str, Any]]:
    parameters = {"FunctionName": "f", "Payload": {"state": state}}
    details = {"resourceType": "lambda", "resource": resource, "output": json.dumps(output)}
    return [
        {"id": 1, "previousEventId": 0, "type": "TaskStateEntered"},
        {
            "id": 2,
            "previousEventId": 1,
            "type": "TaskScheduled",
            "taskScheduledEventDetails": {"parameters": json.dumps(parameters)},
        },
        {"id": 3, "previousEventId": 2, "type": "TaskStarted"},
        {
            "id": 4,
            "previousEventId": 3,
            "type": "TaskSucceeded",
            "taskSucceededEventDetails": details,
        },
    ]


def execution_with(events: list[dict[str, Any]]) -> Execution:
    return Execution("run", "arn:run", "SUCCEEDED", [], None, None, None, events)


BUNDLE = {
    "bucket": "b",
    "prefix": "p/",
    "keys": {"cert": "p/cert.pem"},
    "versions": {"cert": "1"},
    "fingerprint": "f" * 64,
    "serial": "ab",
    "not_after": "2027-01-01T00:00:00Z",
    "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
    "secret_version": "v1",
    "created": True,
}


def test_the_check_passes_a_result_its_model_declares():
    events = history("Export Certificate", "invoke", {"StatusCode": 200, "Payload": BUNDLE})
    checked = assert_lambda_results_match_their_models([execution_with(events)])
    assert checked == {"Export Certificate"}


@pytest.mark.parametrize(
    ("state", "resource", "output", "refused"),
    [
        (
            "Export Certificate",
            "invoke",
            {"StatusCode": 200, "Payload": {**BUNDLE, "passphrase": "hunter2"}},
            "passphrase: Extra inputs are not permitted",
        ),
        (
            "Request Approval",
            "invoke.waitForTaskToken",
            {"decision": "approve", "approver": "a@example.com", "token": "AAAA"},
            "token: Extra inputs are not permitted",
        ),
    ],
    ids=["a passphrase in the export's answer", "a task token in the approval's answer"],
)
def test_the_check_refuses_a_result_with_a_key_its_model_does_not_declare(
    state: str, resource: str, output: dict[str, Any], refused: str
):
    events = history(state, resource, output)
    with pytest.raises(AssertionError, match=refused):
        assert_lambda_results_match_their_models([execution_with(events)])
