"""REL-09 / REL-14: the notify function mails each recipient once per execution and outcome,
even when Step Functions retries it after a partial failure (moto)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from certrelay.workflow import check_result
from functions.notify import app as notify_app
from tests.functional.approval_fixtures import (
    APPROVER,
    ESCALATION,
    REGION,
    Aws,
    FakeContext,
    aws,
    table,
    triage_output,
)
from tests.functional.test_approval_checklist import delivered, filtered_mailbox

__all__ = ["aws"]  # the fixture, imported for pytest
OWNER = "web-team@example.com"  # triage_output's owner
PEOPLE = (OWNER, APPROVER, ESCALATION)  # an expiry tells owners, approvers and escalation
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:certrelay:run-1"


class RefusingSns:
    """An SNS client that refuses the first publish to one recipient, then behaves."""

    def __init__(self, refuse: str) -> None:
        self._real = boto3.client("sns", region_name=REGION)
        self.refuse, self.refused = refuse, 0

    def publish(self, **kwargs: Any) -> Any:
        recipient = kwargs["MessageAttributes"]["recipient"]["StringValue"]
        if recipient == self.refuse and not self.refused:
            self.refused += 1
            error = {"Error": {"Code": "KMSThrottling", "Message": "KMS throttled"}}
            raise ClientError(error, "Publish")  # type: ignore[arg-type]
        return self._real.publish(**kwargs)


def notify(execution: str = EXECUTION) -> dict[str, Any]:
    event = {"state": "Notify Expiry", "decision": triage_output(), "execution": execution}
    result: dict[str, Any] = notify_app.handler(event, FakeContext())  # type: ignore[arg-type]
    check_result("Notify Expiry", result)  # the closed result model (HIS-02)
    return result


def test_the_same_notify_invocation_twice_mails_each_recipient_once(aws: Aws) -> None:
    # GIVEN one filtered mailbox per person an expiry tells
    boxes = {who: filtered_mailbox(aws, who) for who in PEOPLE}
    # WHEN Step Functions delivers the same Notify Expiry invocation twice
    notify()
    notify()
    # THEN each person holds exactly one mail
    for who in PEOPLE:
        assert len(delivered(aws, boxes[who])) == 1, who
    # AND the markers name no address, only its digest
    markers = [i for i in table(aws) if i["pk"]["S"].startswith("notified#")]
    assert len(markers) == len(PEOPLE)
    assert all("@" not in m["pk"]["S"] and m["status"]["S"] == "SENT" for m in markers)
    # AND another execution's outcome is mailed again (the marker is per execution)
    notify(execution=EXECUTION + "-next")
    for who in PEOPLE:
        assert len(delivered(aws, boxes[who])) == 1, who  # the first were received above


def test_a_retry_after_a_refused_publish_mails_only_the_recipient_not_reached(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN one mailbox per person, and SNS refusing the approver's mail once
    boxes = {who: filtered_mailbox(aws, who) for who in PEOPLE}
    sns = RefusingSns(refuse=APPROVER)
    dynamodb = notify_app._client("dynamodb")
    monkeypatch.setattr(notify_app, "_client", lambda s: sns if s == "sns" else dynamodb)
    # WHEN the first invocation fails part-way, the task fails
    with pytest.raises(ClientError, match="KMSThrottling"):
        notify()
    first = {who: delivered(aws, boxes[who]) for who in PEOPLE}
    # AND Step Functions retries it
    notify()
    second = {who: delivered(aws, boxes[who]) for who in PEOPLE}
    # THEN the retry mails only the approver the first attempt did not reach
    assert sns.refused == 1
    assert len(first[APPROVER]) == 0
    assert len(second[APPROVER]) == 1
    reached_first = [who for who in PEOPLE if first[who]]
    assert reached_first, "the refusal came after at least one mail"
    for who in reached_first:
        assert len(first[who]) == 1, who
        assert second[who] == [], who
    assert all(len(first[who]) + len(second[who]) == 1 for who in PEOPLE)
