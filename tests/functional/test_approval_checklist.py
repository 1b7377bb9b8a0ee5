"""Checklist items of the approval mails and API, against moto (IDs from SECURITY-CHECKLIST.md).

APR-16: each person's mail reaches only their own subscription. APR-09: a callback the workflow
no longer takes ends as EXPIRED; a token Step Functions calls invalid is a 404, an ERROR and a
metric. APR-12: nothing secret in any log line. INP-08: bodies over the
caps are refused before anything is decided.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from functions.approval import app as approval_app
from functions.notify import app as notify_app
from functions.request_approval import app as request_app
from tests.functional.approval_fixtures import (
    APPROVER,
    ESCALATION,
    REGION,
    SECOND,
    Aws,
    FakeContext,
    aws,
    call,
    csrf_of,
    http,
    links,
    mails,
    request,
    table,
    triage_output,
    waiting_execution,
)

__all__ = ["aws"]  # the fixture, imported for pytest
OWNER = "web-team@example.com"  # triage_output's owner


def filtered_mailbox(aws: Aws, recipient: str) -> str:
    """An SQS queue subscribed to the notification topic for `recipient` only, as
    FallbackOwnerSubscription is in template.yaml; returns its URL."""
    sns = boto3.client("sns", region_name=REGION)
    (topic,) = [
        t["TopicArn"] for t in sns.list_topics()["Topics"] if "notifications" in t["TopicArn"]
    ]
    name = "box-" + recipient.replace("@", "-at-").replace(".", "-")
    url = aws.sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=arn["Attributes"]["QueueArn"],
        Attributes={
            "FilterPolicyScope": "MessageAttributes",
            "FilterPolicy": json.dumps({"recipient": [recipient]}),
        },
    )
    return str(url)


def delivered(aws: Aws, url: str) -> list[dict[str, Any]]:
    """Every SNS envelope waiting in one queue (each test sends far fewer than ten)."""
    messages = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


# --- APR-16 ---------------------------------------------------------------------------------------


def test_each_approver_receives_only_their_own_link_through_filter_policies(aws: Aws) -> None:
    """APR-16: the topic has one subscription per person, filtered on `recipient`; a request
    round for two approvers puts each approver's mail, with their link only, in their own box."""
    # GIVEN two subscriptions filtered on one approver each
    boxes = {who: filtered_mailbox(aws, who) for who in (APPROVER, SECOND)}
    execution, token = waiting_execution(aws)
    # WHEN a request round mails both approvers
    request(token, execution, approvers=[APPROVER, SECOND])
    ids = links(mails(aws))  # the unfiltered mailbox sees both, as the topic does
    # THEN each box holds exactly one mail: addressed to its owner, with only its owner's link
    assert set(ids) == {APPROVER, SECOND}
    for who, other in ((APPROVER, SECOND), (SECOND, APPROVER)):
        (mail,) = delivered(aws, boxes[who])
        assert mail["MessageAttributes"]["recipient"]["Value"] == who
        assert ids[who] in mail["Message"]
        assert ids[other] not in mail["Message"]


def test_an_outcome_mail_reaches_each_owner_and_approver_in_their_own_box_only(aws: Aws) -> None:
    """APR-16: the same holds for the notify function's outcome mails (an expired approval goes to
    the owners, approvers and escalation contacts), one message each, each to its own box."""
    # GIVEN filtered subscriptions for the owner, the approver and the escalation contact
    people = (OWNER, APPROVER, ESCALATION)
    boxes = {who: filtered_mailbox(aws, who) for who in people}
    # WHEN the approval expired and Notify Expiry runs
    event = {"state": "Notify Expiry", "decision": triage_output(), "execution": "arn:x"}
    sent = notify_app.handler(event, FakeContext())  # type: ignore[arg-type]
    # THEN each person's box holds their one mail and nobody else's
    assert sent["sent"] == len(people)
    for who in people:
        (mail,) = delivered(aws, boxes[who])
        assert mail["MessageAttributes"]["recipient"]["Value"] == who


# --- APR-09 ---------------------------------------------------------------------------------------


class GoneSfn:
    """Step Functions answering every callback with one error code, counting the calls."""

    def __init__(self, code: str) -> None:
        self.code, self.calls, self.token = code, 0, ""

    def _gone(self, **kwargs: Any) -> Any:
        self.calls += 1
        self.token = kwargs["taskToken"]
        raise ClientError({"Error": {"Code": self.code, "Message": "x"}}, "SendTaskSuccess")

    send_task_success = send_task_failure = _gone


def posted_into(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, code: str
) -> tuple[dict[str, Any], GoneSfn, str, str]:
    """A waiting link's page posts `approve` while Step Functions answers `code`; returns the
    answer, the Step Functions stub, the link's id and the page's CSRF token."""
    execution, token = waiting_execution(aws)
    request(token, execution)
    approval_id = links(mails(aws))[APPROVER]
    csrf = csrf_of(call(http("GET", approval_id))["body"])
    gone = GoneSfn(code)
    deps = dataclasses.replace(approval_app._dependencies(), sfn=gone)
    monkeypatch.setattr(approval_app, "_dependencies", lambda: deps)
    answer = call(http("POST", approval_id, form={"csrf": csrf, "decision": "approve"}))
    return answer, gone, approval_id, csrf


def closed_with(aws: Aws, code: str) -> None:
    """Both records EXPIRED, and the one audited callback names `code`."""
    records = {row["pk"]["S"].split("#")[0]: row for row in table(aws)}
    assert records["approval"]["status"]["S"] == "EXPIRED"
    assert records["request"]["status"]["S"] == "EXPIRED"
    audits = [row for row in table(aws) if "callback_error" in row]
    assert [row["callback_error"]["S"] for row in audits] == [code]


def emitted_metrics(out: str) -> list[dict[str, Any]]:
    """The embedded-metric-format documents Powertools printed."""
    lines = (json.loads(line) for line in out.splitlines() if line.startswith("{"))
    return [doc for doc in lines if "_aws" in doc]


def errors_logged_here(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """ERROR records of this test's thread, where the handler runs: a Step Functions execution
    an earlier test started in the same process may still be logging from moto's thread."""
    here = threading.get_ident()
    return [r for r in caplog.records if r.levelno >= logging.ERROR and r.thread == here]


@pytest.mark.parametrize("code", ["TaskTimedOut", "TaskDoesNotExist"])
def test_a_callback_the_workflow_no_longer_takes_is_recorded_as_expired(
    aws: Aws,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    code: str,
) -> None:
    """APR-09: when SendTaskSuccess says the wait is gone (timed out, or no such task), the
    approver gets 410, the approval and its request are EXPIRED, the audit names the error, the
    callback was tried once, not retried, and it is neither an error nor counted as one."""
    # GIVEN a waiting link whose page is open, and Step Functions that answers `code`
    caplog.set_level(logging.INFO)
    # WHEN the approver approves
    answer, gone, _, _ = posted_into(aws, monkeypatch, code)
    # THEN 410, both records EXPIRED, the audit names the error, one call was made
    assert answer["statusCode"] == 410
    assert gone.calls == 1
    closed_with(aws, code)
    assert not errors_logged_here(caplog)
    outcomes = [doc.get("outcome") for doc in emitted_metrics(capfd.readouterr().out)]
    assert "invalid_token" not in outcomes


def test_a_task_token_step_functions_calls_invalid_is_a_404_an_error_and_a_metric(
    aws: Aws,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """APR-09: InvalidToken means Step Functions never issued the stored token (an altered record
    or sealed token, never the approver's doing). The approver gets the same 404 page as any bad
    link, the records are closed (EXPIRED) with the error audited, the callback is not retried,
    one ERROR line says so without the token, link or CSRF token, and the Approvals metric
    counts outcome invalid_token."""
    # GIVEN a waiting link whose page is open, and Step Functions that answers InvalidToken
    caplog.set_level(logging.INFO)
    # WHEN the approver approves
    answer, gone, approval_id, csrf = posted_into(aws, monkeypatch, "InvalidToken")
    # THEN the uniform not-found page, once tried, the records closed
    assert answer["statusCode"] == 404
    assert answer["body"] == call(http("GET", "not-a-link.at-all"))["body"]
    assert gone.calls == 1
    closed_with(aws, "InvalidToken")
    # AND one ERROR record, holding no secret
    errors = errors_logged_here(caplog)
    assert [r.getMessage() for r in errors] == [
        "Step Functions refused the stored task token as invalid"
    ]
    logged = json.dumps([vars(r) for r in errors], default=str)
    for secret in (approval_id, *approval_id.split("."), csrf, gone.token):
        assert secret not in logged
    # AND the metric
    metrics = emitted_metrics(capfd.readouterr().out)
    counted = [doc for doc in metrics if doc.get("outcome") == "invalid_token"]
    assert len(counted) == 1
    (directive,) = counted[0]["_aws"]["CloudWatchMetrics"]
    assert [m["Name"] for m in directive["Metrics"]] == ["Approvals"]
    assert directive["Namespace"] == "certrelay"
    assert directive["Dimensions"] == [["outcome"]]
    assert counted[0]["Approvals"] == [1.0]


# --- APR-12 ---------------------------------------------------------------------------------------


def test_no_log_line_of_the_whole_approval_path_holds_the_link_csrf_or_task_token(
    aws: Aws, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """APR-12: from the request round through GET, HEAD, the approving POST, a replayed POST
    (409) and a GET after the decision, at DEBUG, neither the approval id (nor either of its two
    parts), the page's CSRF token nor the task token appears in a log record or on stdout, where
    Powertools writes its JSON lines."""
    # GIVEN the handlers' loggers at DEBUG, and a waiting execution. botocore's and urllib3's
    # DEBUG prints whole API bodies: they stay at INFO, as the functions' log level never goes
    # below INFO (test_template_checklist holds that).
    for wire in ("botocore", "urllib3"):
        caplog.set_level(logging.INFO, logger=wire)
    for handler_logger in {approval_app.logger.name, request_app.logger.name}:
        caplog.set_level(logging.DEBUG, logger=handler_logger)  # last: it sets caplog's level
    execution, token = waiting_execution(aws)
    # WHEN the whole path runs
    request(token, execution)
    approval_id = links(mails(aws))[APPROVER]
    page = call(http("GET", approval_id))
    csrf = csrf_of(page["body"])
    head = call(http("HEAD", approval_id))
    form = {"csrf": csrf, "decision": "approve", "reason": "planned renewal"}
    approved = call(http("POST", approval_id, form=form))
    replayed = call(http("POST", approval_id, form=form))
    shown = call(http("GET", approval_id))
    # THEN each step answered as designed
    statuses = [a["statusCode"] for a in (page, head, approved, replayed, shown)]
    assert statuses == [200, 200, 200, 409, 409]
    # AND no log holds a secret
    random_part, mac = approval_id.split(".")
    records = json.dumps([vars(r) for r in caplog.records], default=str)
    written = capfd.readouterr()  # Powertools writes to the real stdout
    logs = records + caplog.text + written.out + written.err
    assert "approval answered" in logs  # the handler's own lines were captured
    for name, secret in {
        "approval id": approval_id,
        "its random part": random_part,
        "its MAC": mac,
        "CSRF token": csrf,
        "task token": token,
    }.items():
        assert secret not in logs, f"the {name} was logged"


# --- INP-08 ---------------------------------------------------------------------------------------

MAX_BODY = 8192  # approvals._MAX_BODY: bytes of the (decoded) form


def padded_form(csrf: str, size: int) -> str:
    """A valid approving form of exactly `size` bytes: the padding is spaces (`+`) at the end of
    the reason, which the handler strips, so only the body's size can make it invalid."""
    form = f"csrf={csrf}&decision=approve&reason=ok"
    return form + "+" * (size - len(form))


@pytest.mark.parametrize(
    ("size", "base64_encoded", "status"),
    [
        (MAX_BODY, False, 200),
        (MAX_BODY + 1, False, 400),
        (9000, False, 400),
        (MAX_BODY, True, 200),
        (MAX_BODY + 1, True, 400),  # over the cap once decoded (10,924 characters encoded)
    ],
)
def test_a_body_over_8_kib_is_refused_before_anything_is_decided(
    aws: Aws, size: int, base64_encoded: bool, status: int
) -> None:
    """INP-08: the form is at most 8 KiB, counted after base64 decoding; one byte more is a 400
    (the design answers 400 with its error page rather than 413: API Gateway's HTTP API has no
    smaller body limit of its own to line up with), nothing is written and the run still waits."""
    # GIVEN a waiting link and its page's CSRF token
    execution, token = waiting_execution(aws)
    request(token, execution)
    approval_id = links(mails(aws))[APPROVER]
    csrf = csrf_of(call(http("GET", approval_id))["body"])
    before = table(aws)
    # WHEN a form of `size` bytes is posted
    body = padded_form(csrf, size)
    answer = call(http("POST", approval_id, body=body, base64_encoded=base64_encoded))
    # THEN only a form within the cap decides
    assert len(body.encode()) == size
    assert answer["statusCode"] == status
    run = aws.sfn.describe_execution(executionArn=execution)["status"]
    if status == 400:
        assert table(aws) == before
        assert run == "RUNNING"


def test_a_form_of_more_than_eight_fields_is_refused(aws: Aws) -> None:
    """INP-08: parsing stops at eight fields; a ninth is a 400 and nothing is decided."""
    # GIVEN a waiting link and its page's CSRF token
    execution, token = waiting_execution(aws)
    request(token, execution)
    approval_id = links(mails(aws))[APPROVER]
    csrf = csrf_of(call(http("GET", approval_id))["body"])
    before = table(aws)
    # WHEN the form carries nine fields
    extra = "&".join(f"f{n}=x" for n in range(6))
    body = f"csrf={csrf}&decision=approve&reason=ok&{extra}"
    answer = call(http("POST", approval_id, body=body))
    # THEN 400, nothing written, the run still waits
    assert body.count("=") == 9
    assert answer["statusCode"] == 400
    assert table(aws) == before
    assert aws.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"


def test_a_very_long_certificate_name_is_cut_to_fit_the_mail_subject(aws: Aws) -> None:
    """INP-08: a CN of 253 characters still makes a subject SNS accepts (under 100 ASCII
    characters, one line), cut with an ellipsis; the full name stays in the body."""
    domain = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 53, "example"])
    execution, token = waiting_execution(aws)
    request(token, execution, domain=domain)
    (mail,) = mails(aws)
    subject = mail["Subject"]
    assert len(domain) == 253
    assert len(subject) < 100
    assert subject.isascii()
    assert "\n" not in subject
    assert subject.endswith("...")
    assert domain in mail["Message"]
