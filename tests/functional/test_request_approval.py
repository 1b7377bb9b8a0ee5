"""The request-approval handler against moto: records, one mail per recipient, no secret out."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from certrelay.approval_links import digest
from certrelay.errors import InvalidApprovalRequest, ServiceThrottled
from tests.functional.approval_fixtures import (
    APPROVER,
    BASE_URL,
    ESCALATION,
    SECOND,
    Aws,
    aws,
    call,
    cert_arn,
    http,
    item,
    links,
    mails,
    request,
    table,
    waiting_execution,
)

__all__ = ["aws"]  # the fixture, imported for pytest
RECEIPT_KEYS = {"round", "recipients", "expires_at", "mailed"}


def test_each_approver_gets_one_mail_with_their_own_link_and_the_token_goes_nowhere(
    aws: Aws, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN an execution waiting in "Request Approval" with two approvers
    caplog.set_level(logging.INFO)
    execution, token = waiting_execution(aws)
    before = datetime.now(UTC).replace(microsecond=0)
    # WHEN the request round runs
    receipt = request(token, execution, approvers=[APPROVER, SECOND.upper()])
    # THEN the receipt is small, names the recipients and the deadline, and holds no secret
    assert set(receipt) == RECEIPT_KEYS
    assert receipt["round"] == "request"
    assert receipt["mailed"] is True
    assert receipt["recipients"] == [APPROVER, SECOND]
    deadline = datetime.strptime(receipt["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before + timedelta(seconds=3599) <= deadline <= before + timedelta(seconds=3602)
    # AND each recipient got exactly one mail, addressed to them, with a link of their own
    sent = mails(aws)
    assert sorted(m["MessageAttributes"]["recipient"]["Value"] for m in sent) == [SECOND, APPROVER]
    ids = links(sent)
    assert len(set(ids.values())) == 2
    for mail in sent:
        attributes = {k: v["Value"] for k, v in mail["MessageAttributes"].items()}
        assert attributes["event_kind"] == "ApprovalRequested"
        assert attributes["severity"] == "MEDIUM"
        assert attributes["certificate"] == cert_arn()
        assert mail["Subject"] == "[certrelay] Approval needed: distribute www.example.com"
        for text in ("0a:1b:2c:3d", "2026-03-01T12:00:00Z", cert_arn(), "3 target(s)", "'web'"):
            assert text in mail["Message"]
        assert f"Decide by {deadline:%Y-%m-%d %H:%M} UTC" in mail["Message"]
        assert "nothing happens until you press Approve" in mail["Message"]
        assert "console.aws.amazon.com/states/home" in mail["Message"]
    # AND the token is in no mail, link, receipt or log line
    logs = json.dumps([vars(record) for record in caplog.records], default=str)
    assert "approval requested" in logs
    for text in (json.dumps(receipt), json.dumps(sent), logs, *ids.values()):
        assert token not in text


def test_only_hashes_of_the_token_and_of_the_link_ids_are_stored(aws: Aws) -> None:
    # GIVEN a request round that ran
    execution, token = waiting_execution(aws)
    request(token, execution)
    approval_id = links(mails(aws))[APPROVER]
    # WHEN the table is read
    stored = json.dumps(table(aws))
    # THEN the request is keyed by sha256(token), the approval by sha256(id); the id is nowhere
    assert item(aws, "request#" + digest(token))["status"] == "PENDING"
    approval = item(aws, "approval#" + digest(approval_id))
    assert approval["approver"] == APPROVER
    assert approval["status"] == "PENDING"
    assert approval["request"] == "request#" + digest(token)
    assert approval_id not in stored
    assert approval_id.split(".")[0] not in stored


def test_the_escalation_round_mails_approvers_and_contacts_fresh_links(aws: Aws) -> None:
    # GIVEN a request round whose links went out, then a new wait (a new token) for escalation
    execution, first_token = waiting_execution(aws)
    request(first_token, execution)
    first = links(mails(aws))
    _, second_token = waiting_execution(aws)
    # WHEN the escalation round runs, the escalation list repeating an approver
    receipt = request(second_token, execution, "escalation", escalation=[ESCALATION, APPROVER])
    sent = mails(aws)
    # THEN approvers and contacts, once each, get new links marked as an escalation
    assert receipt["recipients"] == [APPROVER, ESCALATION]
    fresh = links(sent)
    assert set(fresh) == {APPROVER, ESCALATION}
    assert fresh[APPROVER] != first[APPROVER]
    assert {m["MessageAttributes"]["event_kind"]["Value"] for m in sent} == {"ApprovalEscalated"}
    contact_mail = next(m for m in sent if ESCALATION in json.dumps(m["MessageAttributes"]))
    assert "You are an escalation contact" in contact_mail["Message"]
    # AND the first round's link still opens its page until its own deadline
    assert call(http("GET", first[APPROVER]))["statusCode"] == 200
    assert call(http("GET", fresh[ESCALATION]))["statusCode"] == 200


def test_the_same_invocation_twice_sends_the_mails_once(aws: Aws) -> None:
    # GIVEN a request round that already mailed its approver
    execution, token = waiting_execution(aws)
    request(token, execution)
    assert len(mails(aws)) == 1
    # WHEN Lambda delivers the same payload again
    receipt = request(token, execution)
    # THEN nobody gets a second mail, and the receipt still answers
    assert mails(aws) == []
    assert set(receipt) == RECEIPT_KEYS
    assert receipt["mailed"] is False, "so the handler does not announce the round again"


def test_a_retry_after_a_failed_publish_mails_only_the_approver_not_reached(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two approvers, and SNS refusing the second approver's mail (its KMS key throttled)
    from moto.sns.exceptions import SNSException
    from moto.sns.models import SNSBackend

    class KMSThrottling(SNSException):
        code = "KMSThrottling"

    original = SNSBackend.publish
    refused: list[str] = []

    def publish(self: SNSBackend, *args: Any, **kwargs: Any) -> str:
        recipient = (kwargs.get("message_attributes") or {}).get("recipient", {})
        if recipient.get("Value") == SECOND and len(refused) < 1:
            refused.append(SECOND)
            raise KMSThrottling("KMS throttled the request")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SNSBackend, "publish", publish)
    execution, token = waiting_execution(aws)
    # WHEN the first invocation fails on the second mail, and Step Functions retries the task
    # with the same token
    with pytest.raises(ServiceThrottled):
        request(token, execution, approvers=[APPROVER, SECOND])
    first = links(mails(aws))
    receipt = request(token, execution, approvers=[APPROVER, SECOND])
    second = links(mails(aws))
    # THEN each approver got exactly one mail: the first approver is not mailed again and keeps
    # the one link minted for them; the second approver is mailed by the retry
    assert refused == [SECOND]
    assert list(first) == [APPROVER]
    assert list(second) == [SECOND]
    assert receipt["mailed"] is True
    approvals = [i for i in table(aws) if i["pk"]["S"].startswith("approval#")]
    minted_for_first = [i for i in approvals if i["approver"]["S"] == APPROVER]
    assert len(minted_for_first) == 1, "no second link for the approver already reached"
    assert call(http("GET", first[APPROVER]))["statusCode"] == 200
    assert call(http("GET", second[SECOND]))["statusCode"] == 200
    # AND a third delivery of the same invocation mails nobody
    assert request(token, execution, approvers=[APPROVER, SECOND])["mailed"] is False
    assert mails(aws) == []


def test_a_hostile_domain_yields_a_clean_ascii_subject(aws: Aws) -> None:
    execution, token = waiting_execution(aws)
    request(token, execution, domain="ünïcode\n<script>" + "x" * 150 + ".example.com")
    (mail,) = mails(aws)
    assert mail["Subject"].isascii()
    assert len(mail["Subject"]) <= 99
    assert "\n" not in mail["Subject"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"approvers": [], "escalation": []}, "no approvers"),
        ({"approvers": ["not-an-address"]}, "no approvers"),
        ({"timeout_seconds": 0}, "timeout"),
    ],
)
def test_an_approval_block_nobody_can_answer_is_refused_before_anything_is_stored(
    aws: Aws, changes: dict[str, object], message: str
) -> None:
    execution, token = waiting_execution(aws)
    with pytest.raises(InvalidApprovalRequest, match=message):
        request(token, execution, **changes)
    assert table(aws) == []
    assert mails(aws) == []


def test_links_point_at_the_configured_api(aws: Aws) -> None:
    execution, token = waiting_execution(aws)
    request(token, execution)
    (mail,) = mails(aws)
    assert f"  {BASE_URL}/approvals/" in mail["Message"]
    assert f"{BASE_URL}//approvals" not in mail["Message"]


def test_records_outlive_their_links_deadline_so_late_clicks_are_answered(aws: Aws) -> None:
    # GIVEN a request round WHEN its records are stored THEN the table's TTL (purge_at) is a month
    # past each link's deadline (expires_at): a late click gets 410 or 409, not a 404
    execution, token = waiting_execution(aws)
    request(token, execution)
    approval_id = links(mails(aws))[APPROVER]

    for record in (
        item(aws, "request#" + digest(token)),
        item(aws, "approval#" + digest(approval_id)),
    ):
        assert int(record["purge_at"]) - int(record["expires_at"]) == 30 * 24 * 3600
