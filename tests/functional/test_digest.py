"""The daily digest function on moto: one mail per owner with held lines, once per day.

The digest table is created from template.yaml's own DigestTable (its Pending index included);
each owner reads a queue subscribed with a filter policy on `recipient`, as on AWS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from moto import mock_aws

from certrelay import digest
from certrelay.mail import sns_message
from certrelay.tasks import notify
from certrelay.workflow import check_result
from functions.digest import app as digest_app
from tests.functional.approval_fixtures import FakeContext
from tests.templates import read_template

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
TABLE = "certrelay-digest"
ALICE, BOB = "alice@example.com", "bob@example.com"
NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:certrelay:run-{}"


@dataclass
class Mail:
    dynamodb: Any
    sns: Any
    sqs: Any
    topic: str
    boxes: dict[str, str]

    def inbox(self, who: str) -> list[dict[str, Any]]:
        got = self.sqs.receive_message(QueueUrl=self.boxes[who], MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in got.get("Messages", [])]

    def lines(self) -> list[dict[str, Any]]:
        items = self.dynamodb.scan(TableName=TABLE)["Items"]
        return [i for i in items if i["pk"]["S"].startswith(digest.HELD)]


@pytest.fixture
def mail(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mail]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        table = read_template(ROOT / "template.yaml")["Resources"]["DigestTable"]["Properties"]
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=table["KeySchema"],
            AttributeDefinitions=table["AttributeDefinitions"],
            GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"],
            BillingMode="PAY_PER_REQUEST",
        )
        sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
        topic = sns.create_topic(Name="certrelay-notifications")["TopicArn"]
        boxes = {}
        for who in (ALICE, BOB):
            url = sqs.create_queue(QueueName=who.split("@")[0])["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            sns.subscribe(
                TopicArn=topic,
                Protocol="sqs",
                Endpoint=arn["Attributes"]["QueueArn"],
                Attributes={
                    "FilterPolicyScope": "MessageAttributes",
                    "FilterPolicy": json.dumps({"recipient": [who]}),
                    "RawMessageDelivery": "false",
                },
            )
            boxes[who] = url
        monkeypatch.setenv("DIGEST_TABLE_NAME", TABLE)
        monkeypatch.setenv("NOTIFICATION_TOPIC_ARN", topic)
        digest_app._dependencies.cache_clear()
        yield Mail(dynamodb, sns, sqs, topic, boxes)


def held(mail: Mail, owner: str, run: int, *, domain: str, at: datetime = NOW) -> None:
    """What Hold For Digest stores for one owner's routine mail."""
    message = sns_message(
        owner,
        f"[certrelay] INFORMATIONAL: {domain} expires in 7 days (ACM will renew)",
        "the body is not kept",
        severity="INFORMATIONAL",
        event_kind="ApproachingExpiration",
        certificate_arn=f"arn:aws:acm:us-east-1:123456789012:certificate/{domain}",
    )
    assert digest.hold(
        mail.dynamodb,
        TABLE,
        marker=f"{domain}#ApproachingExpiration#01#7#to#{owner}",
        owner=owner,
        message=message,
        summary=f"{domain} expires in 7 days; ACM will renew it.",
        execution=EXECUTION.format(run),
        now=at - timedelta(hours=5),
    )


def run_digest(monkeypatch: pytest.MonkeyPatch, at: datetime = NOW) -> dict[str, Any]:
    class Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Clock:  # type: ignore[override]
            return cls.fromtimestamp(at.timestamp(), tz)

    monkeypatch.setattr(digest_app, "datetime", Clock)
    return digest_app.handler({}, FakeContext())  # type: ignore[arg-type]


def test_two_owners_get_one_digest_each_and_a_second_run_mails_nobody(
    mail: Mail, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two routine lines held for Alice and one for Bob
    held(mail, ALICE, 1, domain="a.example.com")
    held(mail, ALICE, 2, domain="b.example.com")
    held(mail, BOB, 3, domain="c.example.com")

    # WHEN the daily digest runs
    report = run_digest(monkeypatch)

    # THEN each owner gets exactly one mail listing their own lines, and only theirs
    assert report == {"day": "2026-12-01", "owners": 2, "mailed": 2, "lines": 3}
    (alice,) = mail.inbox(ALICE)
    (bob,) = mail.inbox(BOB)
    assert (
        alice["Subject"]
        == "[certrelay] INFORMATIONAL: daily digest for 2026-12-01: 2 routine updates"
    )
    assert "a.example.com expires in 7 days (ACM will renew)" in alice["Message"]
    assert "b.example.com" in alice["Message"]
    assert "c.example.com" not in alice["Message"]
    assert EXECUTION.format(1) in alice["Message"]
    assert "the body is not kept" not in alice["Message"]
    assert "1 routine update since" in bob["Message"]
    assert alice["MessageAttributes"]["event_kind"]["Value"] == "Digest"
    # AND every line is marked sent, out of the pending index
    assert all(
        "pending" not in line and line["sent_in"]["S"] == "2026-12-01" for line in mail.lines()
    )

    # WHEN it runs again the same day (a Lambda retry, or by hand) THEN nobody is mailed
    again = run_digest(monkeypatch, NOW + timedelta(minutes=5))
    assert (again["owners"], again["mailed"]) == (0, 0)
    assert mail.inbox(ALICE) == []
    assert mail.inbox(BOB) == []


def test_an_owner_with_nothing_held_gets_no_mail(
    mail: Mail, monkeypatch: pytest.MonkeyPatch
) -> None:
    held(mail, BOB, 1, domain="c.example.com")

    report = run_digest(monkeypatch)

    assert report["mailed"] == 1
    assert mail.inbox(ALICE) == []
    assert len(mail.inbox(BOB)) == 1


def test_a_line_held_twice_under_one_marker_is_stored_once(mail: Mail) -> None:
    held(mail, ALICE, 1, domain="a.example.com")
    with pytest.raises(AssertionError):  # hold() answers False: the marker's line exists
        held(mail, ALICE, 1, domain="a.example.com")
    assert len(mail.lines()) == 1


def test_a_retry_after_the_mail_went_out_marks_that_batch_and_keeps_newer_lines_for_tomorrow(
    mail: Mail, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN Alice's digest went out but the run died before marking her lines sent
    held(mail, ALICE, 1, domain="a.example.com")
    real_move = digest._move

    def dies_when_marking(*args: Any, **kwargs: Any) -> None:
        if args[4] is None:  # the move out of the index, after the publish
            raise RuntimeError("the function timed out")
        real_move(*args, **kwargs)

    monkeypatch.setattr(digest, "_move", dies_when_marking)
    with pytest.raises(RuntimeError):
        run_digest(monkeypatch)
    monkeypatch.setattr(digest, "_move", real_move)
    assert len(mail.inbox(ALICE)) == 1
    # AND a new line is held before Lambda retries
    held(mail, ALICE, 2, domain="b.example.com")

    # WHEN the retry runs the same day
    retry = run_digest(monkeypatch, NOW + timedelta(minutes=1))

    # THEN Alice is not mailed again; the mailed line is marked sent, the new one waits
    assert retry["mailed"] == 0
    assert mail.inbox(ALICE) == []
    state = {line["summary"]["S"].split()[0]: line for line in mail.lines()}
    assert "pending" not in state["a.example.com"]
    assert state["b.example.com"]["pending"]["S"] == digest.PENDING

    # WHEN tomorrow's digest runs THEN it lists only the new line
    run_digest(monkeypatch, NOW + timedelta(days=1))
    (tomorrow,) = mail.inbox(ALICE)
    assert "b.example.com" in tomorrow["Message"]
    assert "a.example.com" not in tomorrow["Message"]


def test_one_owners_refused_mail_fails_the_run_after_the_others_and_a_retry_mails_only_them(
    mail: Mail, monkeypatch: pytest.MonkeyPatch
) -> None:
    held(mail, ALICE, 1, domain="a.example.com")
    held(mail, BOB, 2, domain="c.example.com")
    real = boto3.client("sns", region_name=REGION)

    class RefusesAliceOnce:
        refused = 0

        def publish(self, **kwargs: Any) -> Any:
            if (
                kwargs["MessageAttributes"]["recipient"]["StringValue"] == ALICE
                and not self.refused
            ):
                self.refused += 1
                raise ClientError({"Error": {"Code": "KMSThrottling", "Message": "x"}}, "Publish")
            return real.publish(**kwargs)

    refusing = RefusesAliceOnce()
    monkeypatch.setattr(digest_app, "_dependencies", lambda: (mail.dynamodb, refusing))
    with pytest.raises(ClientError, match="KMSThrottling"):
        run_digest(monkeypatch)
    assert mail.inbox(ALICE) == []
    assert len(mail.inbox(BOB)) == 1

    retry = run_digest(monkeypatch, NOW + timedelta(minutes=2))

    assert retry["mailed"] == 1
    assert len(mail.inbox(ALICE)) == 1
    assert mail.inbox(BOB) == []


# --- Report Distribution: a routine report waits for the digest -------------------------------


def _report(mail: Mail, **changes: Any) -> dict[str, Any]:
    decision = {
        "certificate": {"arn": "arn:aws:acm:us-east-1:1:certificate/x", "domain": "x.example.com"},
        "owners": [ALICE],
        "notify": "digest",
        "approval": {"mode": "auto", "approver": "policy"},
        "distribution": {"results": [{"target": "web#bucket", "status": "DISTRIBUTED"}]},
        **changes,
    }
    run = notify.Telling(
        mail.dynamodb, mail.sns, TABLE, mail.topic, Logger(), NOW, digest_table=TABLE
    )
    event = {"state": "Report Distribution", "execution": EXECUTION.format(9), "decision": decision}
    answer = notify.report_distribution(event, run)
    check_result("Report Distribution", answer)  # `held` is declared by its closed model
    return answer


def test_a_report_of_a_renewal_a_person_approved_is_held_too(mail: Mail) -> None:
    # GIVEN a digest profile's renewal a person approved, distributed everywhere
    answer = _report(mail, approval={"mode": "human", "approver": "human"})
    # THEN the report of its success asks nothing more of anyone: it waits for the digest
    assert answer["held"] == 1
    assert mail.inbox(ALICE) == []


def test_a_routine_distribution_report_of_a_digest_profile_is_held_not_mailed(mail: Mail) -> None:
    answer = _report(mail)

    assert answer["held"] == 1
    assert answer["summary"]["complete"]
    assert mail.inbox(ALICE) == []
    (line,) = mail.lines()
    assert line["event_kind"]["S"] == "DistributionReport"
    assert "delivered to 1 of 1 target(s)" in line["summary"]["S"]
    _report(mail)  # a Lambda retry of the same task
    assert len(mail.lines()) == 1, "held once per execution and owner"


@pytest.mark.parametrize(
    "changes",
    [
        {"notify": "immediate"},
        {"distribution": {"results": [{"target": "web#bucket", "status": "FAILED"}]}},
    ],
    ids=["immediate-profile", "incomplete"],
)
def test_a_report_that_is_not_routine_is_mailed_at_once(
    mail: Mail, changes: dict[str, Any]
) -> None:
    answer = _report(mail, **changes)

    assert "held" not in answer
    assert len(mail.inbox(ALICE)) == 1
    assert mail.lines() == []
