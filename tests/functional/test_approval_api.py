"""The approval API against moto: GET never acts, the page's POST decides once, bad links 404."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from certrelay.approval_links import RequestSettings, csrf_token, digest, load_key
from certrelay.approval_requests import request_approval
from functions.approval import app as approval_app
from tests.functional.approval_fixtures import (
    APPROVER,
    BROWSER,
    ESCALATION,
    KEY,
    REGION,
    SECOND,
    SECURITY_HEADERS,
    TABLE,
    Aws,
    audits,
    aws,
    call,
    cert_arn,
    csrf_of,
    finished,
    http,
    item,
    last_callback,
    links,
    mails,
    request,
    table,
    triage_output,
    waiting_execution,
    write_profiles,
)

__all__ = ["aws"]  # the fixture, imported for pytest


def secure(answer: dict[str, Any]) -> dict[str, Any]:
    """Assert the security headers every answer carries; return the answer."""
    headers = answer["headers"]
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value, name
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "form-action 'self'" in csp
    assert "Traceback" not in answer.get("body", "")
    return answer


def waiting_link(aws: Aws, **decision: Any) -> tuple[str, str]:
    """A waiting execution and the approver's link id from the mail."""
    execution, token = waiting_execution(aws)
    request(token, execution, **decision)
    return execution, links(mails(aws))[APPROVER]


def post(approval_id: str, decision: str = "approve", reason: str = "", **kw: Any) -> Any:
    """Open the page, then press a button on it, as a browser would."""
    page = secure(call(http("GET", approval_id, email=kw.get("email"))))
    form = {"csrf": csrf_of(page["body"]), "decision": decision, "reason": reason}
    return secure(call(http("POST", approval_id, form=form, **kw)))


class CountingSfn:
    """The real (moto) Step Functions client, counting the callbacks made through it."""

    def __init__(self, real: Any, fail_with: str | None = None) -> None:
        self.real, self.fail_with, self.calls = real, fail_with, 0

    def _call(self, method: Callable[..., Any], **kwargs: Any) -> Any:
        self.calls += 1
        if self.fail_with == "lost answer":  # delivered, but the connection broke afterwards
            self.fail_with = None
            method(**kwargs)
            raise EndpointConnectionError(endpoint_url="https://states.us-east-1.amazonaws.com")
        if self.fail_with:
            code, self.fail_with = self.fail_with, None
            raise ClientError({"Error": {"Code": code, "Message": "x"}}, "SendTaskSuccess")
        return method(**kwargs)

    def send_task_success(self, **kwargs: Any) -> Any:
        return self._call(self.real.send_task_success, **kwargs)

    def send_task_failure(self, **kwargs: Any) -> Any:
        return self._call(self.real.send_task_failure, **kwargs)


@pytest.fixture
def sfn_spy(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> CountingSfn:
    spy = CountingSfn(aws.sfn)
    deps = dataclasses.replace(approval_app._dependencies(), sfn=spy)
    monkeypatch.setattr(approval_app, "_dependencies", lambda: deps)
    return spy


def test_opening_the_link_shows_the_facts_and_changes_nothing(aws: Aws) -> None:
    # GIVEN a waiting execution and the approver's link
    execution, approval_id = waiting_link(aws)
    before = table(aws)
    # WHEN the approver opens it
    answer = secure(call(http("GET", approval_id)))
    # THEN the page shows the certificate, the approver, the deadline and one CSRF-bound form
    page = answer["body"]
    assert answer["statusCode"] == 200
    for text in ("www.example.com", "0a:1b:2c:3d", "2026-03-01T12:00:00Z", APPROVER, " UTC"):
        assert text in page
    assert "3 target(s)" in page
    assert execution in page
    assert page.count("<form") == 1
    assert csrf_of(page)
    # AND nothing was written and the execution still waits
    assert table(aws) == before
    assert aws.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"


@pytest.mark.parametrize(
    ("method", "query"),
    [("GET", ""), ("HEAD", ""), ("GET", "action=approve"), ("GET", "decision=approve&csrf=x")],
)
def test_a_mail_scanner_following_the_link_cannot_decide(aws: Aws, method: str, query: str) -> None:
    # GIVEN a waiting execution and its link
    execution, approval_id = waiting_link(aws)
    before = table(aws)
    # WHEN a scanner fetches it, even with an action in the query string
    answer = secure(call(http(method, approval_id, query=query)))
    # THEN it gets the page (HEAD: no body), and nothing changed anywhere
    assert answer["statusCode"] == 200
    assert (answer["body"] == "") is (method == "HEAD")
    assert table(aws) == before
    assert aws.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"


@pytest.mark.parametrize("csrf", [None, "", "forged-token", "A" * 43])
def test_a_post_without_the_pages_csrf_token_is_refused(aws: Aws, csrf: str | None) -> None:
    # GIVEN a waiting execution and its link
    execution, approval_id = waiting_link(aws)
    before = table(aws)
    form = {"decision": "approve"} | ({"csrf": csrf} if csrf is not None else {})
    # WHEN a POST arrives without the page's CSRF token
    answer = secure(call(http("POST", approval_id, form=form)))
    # THEN 403, nothing recorded, the workflow still waits
    assert answer["statusCode"] == 403
    assert table(aws) == before
    assert aws.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"


def test_every_bad_link_gets_the_same_404(aws: Aws) -> None:
    # GIVEN a genuine link, and forged, short, long, re-signed and path-breaking variants
    _, genuine = waiting_link(aws)
    random_part, mac = genuine.split(".")
    bad = [
        "abc",
        "x" * 5000,
        f"{random_part}.{'A' * 22}",  # the right random part with a forged MAC
        f"{'B' * 32}.{mac}",  # a forged random part with the right MAC
        genuine + "x",
        genuine[:-1],
        "../../etc/passwd",
        f"{genuine}/extra",
    ]
    before = table(aws)
    # WHEN each is opened or posted to
    answers = [secure(call(http(m, link))) for link in bad for m in ("GET", "POST")]
    # THEN every answer is a 404 with byte-identical bodies, and nothing changed
    assert {a["statusCode"] for a in answers} == {404}
    assert len({a["body"] for a in answers}) == 1
    assert "not valid" in answers[0]["body"]
    assert table(aws) == before


def test_approving_resumes_the_execution_once_and_audits_who_from_where(
    aws: Aws, sfn_spy: CountingSfn
) -> None:
    # GIVEN a waiting execution and its link
    execution, approval_id = waiting_link(aws)
    # WHEN the approver approves with a reason
    answer = post(approval_id, reason="change CHG-42", source_ip="203.0.113.9")
    # THEN a thank-you page, and the execution resumes with exactly one decision
    assert answer["statusCode"] == 200
    assert "Thank you" in answer["body"]
    described = finished(aws, execution)
    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    assert set(output) == {"decision", "approver", "reason", "decided_at"}
    assert (output["decision"], output["approver"]) == ("approve", APPROVER)
    assert output["reason"] == "change CHG-42"
    assert sfn_spy.calls == 1
    # AND the audit record says who, what, why, when, from which address and browser
    audit, callback = audits(aws, approval_id)
    assert audit["event"] == "decided"
    assert audit["approver"] == APPROVER
    assert audit["decision"] == "approve"
    assert audit["reason"] == "change CHG-42"
    assert audit["source_ip"] == "203.0.113.9"
    assert audit["user_agent"] == BROWSER
    assert audit["execution"] == execution
    assert audit["decided_at"] == output["decided_at"]
    assert (callback["event"], callback["callback"]) == ("callback", "DELIVERED")
    assert callback["attempt"] == audit["pk"]


def test_a_double_click_or_replay_decides_once_and_shows_the_first_decision(
    aws: Aws, sfn_spy: CountingSfn
) -> None:
    # GIVEN an approval that went through
    execution, approval_id = waiting_link(aws)
    page = call(http("GET", approval_id))["body"]
    form = {"csrf": csrf_of(page), "decision": "approve", "reason": "first"}
    assert call(http("POST", approval_id, form=form))["statusCode"] == 200
    first_output = finished(aws, execution)["output"]
    # WHEN the same form is sent again, then replayed as a rejection
    again = secure(call(http("POST", approval_id, form=form)))
    replay = secure(call(http("POST", approval_id, form=form | {"decision": "reject"})))
    # THEN both get 409 showing the recorded decision; the workflow was told only once
    for answer in (again, replay):
        assert answer["statusCode"] == 409
        assert "Already decided" in answer["body"]
        assert "first" in answer["body"]
        assert APPROVER in answer["body"]
    assert sfn_spy.calls == 1
    assert aws.sfn.describe_execution(executionArn=execution)["output"] == first_output


def test_a_second_approver_after_the_first_sees_the_first_decision(
    aws: Aws, sfn_spy: CountingSfn
) -> None:
    # GIVEN two approvers; the second approves
    execution, token = waiting_execution(aws)
    request(token, execution, approvers=[APPROVER, SECOND])
    ids = links(mails(aws))
    first_page = call(http("GET", ids[APPROVER]))["body"]
    assert post(ids[SECOND], reason="looks good")["statusCode"] == 200
    # WHEN the first approver, whose page was already open, then rejects
    form = {"csrf": csrf_of(first_page), "decision": "reject", "reason": "no"}
    answer = secure(call(http("POST", ids[APPROVER], form=form)))
    # THEN 409 naming the second approver's decision; one callback; the execution succeeded
    assert answer["statusCode"] == 409
    assert SECOND in answer["body"]
    assert "looks good" in answer["body"]
    assert sfn_spy.calls == 1
    assert finished(aws, execution)["status"] == "SUCCEEDED"
    assert item(aws, "approval#" + digest(ids[APPROVER]))["status"] == "PENDING"


def test_rejecting_fails_the_execution_with_approval_rejected(aws: Aws) -> None:
    # GIVEN a waiting execution
    execution, approval_id = waiting_link(aws)
    # WHEN the approver rejects
    answer = post(approval_id, decision="reject", reason="not in the freeze")
    # THEN the execution fails with the error name the state machine catches
    assert answer["statusCode"] == 200
    assert "rejected" in answer["body"]
    described = finished(aws, execution)
    assert described["status"] == "FAILED"
    assert described.get("error") == "ApprovalRejected"
    assert audits(aws, approval_id)[0]["decision"] == "reject"


def test_a_link_past_its_deadline_is_gone(aws: Aws) -> None:
    # GIVEN a link whose round ended an hour ago
    settings = RequestSettings.from_env(os.environ)
    key = load_key(boto3.client("secretsmanager"), settings.key_secret_arn)
    execution, token = waiting_execution(aws)
    request_approval(
        {"token": token, "execution": execution, "round": "request", "decision": triage_output()},
        dynamodb=aws.dynamodb,
        sns=boto3.client("sns", region_name=REGION),
        kms=boto3.client("kms", region_name=REGION),
        key=key,
        settings=settings,
        now=datetime.now(UTC) - timedelta(hours=2),
    )
    approval_id = links(mails(aws))[APPROVER]
    before = table(aws)
    # WHEN it is opened and posted to
    shown = secure(call(http("GET", approval_id)))
    form = {"csrf": csrf_token(key, approval_id), "decision": "approve"}
    posted = secure(call(http("POST", approval_id, form=form)))
    # THEN 410 both times, and nothing changed
    assert (shown["statusCode"], posted["statusCode"]) == (410, 410)
    assert "expired" in shown["body"]
    assert table(aws) == before
    assert aws.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"


def test_a_decision_after_the_workflow_stopped_waiting_is_recorded_as_expired(aws: Aws) -> None:
    # GIVEN a link opened while the execution waited, whose wait then timed out
    execution, token = waiting_execution(aws, timeout_seconds=1)
    request(token, execution)
    approval_id = links(mails(aws))[APPROVER]
    page = call(http("GET", approval_id))["body"]
    assert finished(aws, execution)["status"] == "FAILED"
    # WHEN the approver approves
    form = {"csrf": csrf_of(page), "decision": "approve"}
    answer = secure(call(http("POST", approval_id, form=form)))
    # THEN 410 saying the decision came too late, recorded on the approval and the audit
    assert answer["statusCode"] == 410
    assert "stopped waiting" in answer["body"]
    assert item(aws, "approval#" + digest(approval_id))["status"] == "EXPIRED"
    audit = last_callback(aws, approval_id)
    assert audit["callback"] == "EXPIRED"
    assert audit["callback_error"] == "TaskTimedOut"  # as AWS answers (moto_fixes)
    assert secure(call(http("GET", approval_id)))["statusCode"] == 410


def test_a_failed_callback_reopens_the_link_so_the_approver_can_retry(
    aws: Aws, sfn_spy: CountingSfn
) -> None:
    # GIVEN Step Functions throttles the first callback
    execution, approval_id = waiting_link(aws)
    sfn_spy.fail_with = "ThrottlingException"
    # WHEN the approver approves, sees "try again", and approves again
    first = post(approval_id)
    assert first["statusCode"] == 503
    assert item(aws, "approval#" + digest(approval_id))["status"] == "PENDING"
    assert last_callback(aws, approval_id)["callback"] == "FAILED"
    second = post(approval_id)
    # THEN the retry goes through and the execution resumes
    assert second["statusCode"] == 200
    assert finished(aws, execution)["status"] == "SUCCEEDED"
    assert last_callback(aws, approval_id)["callback"] == "DELIVERED"


@pytest.mark.parametrize(
    "form",
    [
        {"decision": "maybe"},
        {},
        {"decision": "approve", "reason": "x" * 1025},
        {"decision": "approve", "reason": "é" * 513},  # 1026 bytes in UTF-8
        {"decision": "approve", "admin": "1"},  # APR-10: no field the page does not post
        {"decision": "approve", "decision2": "x"},
        {"decision": "approve", "reason": "ok", "": "x"},
    ],
)
def test_a_form_that_is_not_one_decision_with_a_short_reason_is_a_400(
    aws: Aws, sfn_spy: CountingSfn, form: dict[str, str]
) -> None:
    """APR-10: a decision other than approve/reject, a reason over 1 KiB or any field besides
    csrf, decision and reason is a 400: nothing is written and the workflow is not called."""
    # GIVEN a waiting link and its page's CSRF token
    execution, approval_id = waiting_link(aws)
    csrf = csrf_of(call(http("GET", approval_id))["body"])
    before = table(aws)
    # WHEN the page's form arrives altered
    answer = secure(call(http("POST", approval_id, form={"csrf": csrf, **form})))
    # THEN 400, nothing written, no callback, the run still waits
    assert answer["statusCode"] == 400
    assert table(aws) == before
    assert sfn_spy.calls == 0
    assert aws.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"


def test_a_base64_encoded_form_is_understood(aws: Aws) -> None:
    execution, approval_id = waiting_link(aws)
    csrf = csrf_of(call(http("GET", approval_id))["body"])
    form = {"csrf": csrf, "decision": "approve", "reason": "b64"}
    answer = secure(call(http("POST", approval_id, form=form, base64_encoded=True)))
    assert answer["statusCode"] == 200
    assert finished(aws, execution)["status"] == "SUCCEEDED"


def test_with_sso_only_the_signed_in_approver_may_decide(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN SSO mode and a link sent to the approver
    monkeypatch.setenv("SSO_ISSUER", "https://idp.example.com")
    monkeypatch.setenv("SSO_CLIENT_ID", "certrelay")
    approval_app._dependencies.cache_clear()
    execution, approval_id = waiting_link(aws, approvers=[APPROVER, SECOND])
    before = table(aws)
    # WHEN someone else, signed in, opens and posts to it: a stranger, another approver
    shown = secure(call(http("GET", approval_id, email="mallory@example.com")))
    colleague = secure(call(http("GET", approval_id, email=SECOND)))
    session = "mallory@example.com"
    form = {"csrf": csrf_token(KEY.encode(), approval_id, session), "decision": "approve"}
    posted = secure(call(http("POST", approval_id, form=form, email=session)))
    # AND nobody signed in posts the link-only CSRF token
    unsigned = {"csrf": csrf_token(KEY.encode(), approval_id), "decision": "approve"}
    anonymous = secure(call(http("POST", approval_id, form=unsigned)))
    # THEN 403 showing who is signed in, and nothing changed
    statuses = [a["statusCode"] for a in (shown, colleague, posted, anonymous)]
    assert statuses == [403, 403, 403, 403]
    assert "mallory@example.com" in shown["body"]
    assert table(aws) == before
    # AND the approver, signed in (any letter case), decides; the audit says SSO
    answer = post(approval_id, email=APPROVER.upper())
    assert answer["statusCode"] == 200
    assert finished(aws, execution)["status"] == "SUCCEEDED"
    assert audits(aws, approval_id)[0]["authenticated_by"] == "sso"


def test_with_sso_a_page_csrf_token_does_not_serve_another_session(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN SSO mode and the page the approver saw while signed in
    monkeypatch.setenv("SSO_ISSUER", "https://idp.example.com")
    monkeypatch.setenv("SSO_CLIENT_ID", "certrelay")
    approval_app._dependencies.cache_clear()
    execution, approval_id = waiting_link(aws, approvers=[APPROVER, SECOND])
    page = secure(call(http("GET", approval_id, email=APPROVER)))["body"]
    form = {"csrf": csrf_of(page), "decision": "approve"}
    # WHEN that form is posted with another person's session
    answer = secure(call(http("POST", approval_id, form=form, email=SECOND)))
    # THEN it is refused and the workflow still waits
    assert answer["statusCode"] == 403
    assert aws.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"


def test_hostile_domain_and_reason_are_shown_as_text(aws: Aws) -> None:
    # GIVEN a certificate whose domain carries markup, and a reason carrying markup
    _, approval_id = waiting_link(aws, domain="<script>alert(1)</script>.example.com")
    page = secure(call(http("GET", approval_id)))["body"]
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.example.com" in page
    post(approval_id, reason='<img src=x onerror="alert(2)">')
    # WHEN the recorded decision is shown again
    shown = secure(call(http("GET", approval_id)))
    # THEN it is escaped too
    assert shown["statusCode"] == 409
    assert "<img" not in shown["body"]
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in shown["body"]


def test_an_unexpected_failure_is_a_503_page_and_a_log_line_without_details(
    aws: Aws, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN the table is gone
    _, approval_id = waiting_link(aws)
    aws.dynamodb.delete_table(TableName=TABLE)
    caplog.set_level(logging.INFO)
    # WHEN the link is opened
    answer = secure(call(http("GET", approval_id)))
    # THEN a 503 page; the log names the exception type, never the link or a trace
    assert answer["statusCode"] == 503
    failures = [r for r in caplog.records if r.getMessage() == "approval request failed"]
    assert [getattr(r, "error_type", None) for r in failures] == ["ResourceNotFoundException"]
    logs = json.dumps([vars(r) for r in caplog.records], default=str)
    assert approval_id not in logs
    assert "Traceback" not in logs


class StaleReads:
    """DynamoDB whose next read of chosen keys answers an earlier snapshot: two clicks racing."""

    def __init__(self, real: Any) -> None:
        self.real, self.stale = real, dict[str, Any]()

    def snapshot(self, *pks: str) -> dict[str, Any]:
        return {pk: self.real.get_item(TableName=TABLE, Key={"pk": {"S": pk}}) for pk in pks}

    def get_item(self, **kwargs: Any) -> Any:
        return self.stale.pop(kwargs["Key"]["pk"]["S"], None) or self.real.get_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_two_racing_clicks_are_decided_once_by_the_conditional_transaction(
    aws: Aws, sfn_spy: CountingSfn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two approvers with their pages open
    execution, token = waiting_execution(aws)
    request(token, execution, approvers=[APPROVER, SECOND])
    ids = links(mails(aws))
    pages = {email: call(http("GET", ids[email]))["body"] for email in (APPROVER, SECOND)}
    racing = StaleReads(aws.dynamodb)
    deps = dataclasses.replace(approval_app._dependencies(), dynamodb=racing)
    monkeypatch.setattr(approval_app, "_dependencies", lambda: deps)
    # AND the first approver's request reads the records as they were before the second's click
    before = racing.snapshot("approval#" + digest(ids[APPROVER]), "request#" + digest(token))
    second = {"csrf": csrf_of(pages[SECOND]), "decision": "approve", "reason": "second"}
    assert call(http("POST", ids[SECOND], form=second))["statusCode"] == 200
    racing.stale.update(before)
    # WHEN the first approver's click, having passed its checks, reaches the transaction
    first = {"csrf": csrf_of(pages[APPROVER]), "decision": "reject", "reason": "first"}
    answer = secure(call(http("POST", ids[APPROVER], form=first)))
    # THEN the transaction refuses it: 409 with the recorded decision, one callback, no audit
    assert answer["statusCode"] == 409
    assert "second" in answer["body"]
    assert sfn_spy.calls == 1
    assert finished(aws, execution)["status"] == "SUCCEEDED"
    assert audits(aws, ids[APPROVER]) == []


@pytest.mark.parametrize(
    "tamper",
    [{"expires_at": {"N": "4102444800"}}, {"approver": {"S": "mallory@example.com"}}],
)
def test_a_record_altered_in_the_table_no_longer_opens(aws: Aws, tamper: dict[str, Any]) -> None:
    # GIVEN a genuine link whose stored approver or deadline someone changed in the table
    _, approval_id = waiting_link(aws)
    pk = {"pk": {"S": "approval#" + digest(approval_id)}}
    stored = aws.dynamodb.get_item(TableName=TABLE, Key=pk)["Item"]
    aws.dynamodb.put_item(TableName=TABLE, Item={**stored, **tamper})
    # WHEN the link is opened
    answer = secure(call(http("GET", approval_id)))
    # THEN the MAC no longer matches: the same 404 as any bad link
    assert answer["statusCode"] == 404
    assert answer["body"] == call(http("GET", "abc"))["body"]


def test_a_record_planted_in_the_table_without_the_key_is_no_link(aws: Aws) -> None:
    # GIVEN someone who can write the table, but lacks the key, plants an approval record
    _, genuine = waiting_link(aws)
    stored = aws.dynamodb.get_item(
        TableName=TABLE, Key={"pk": {"S": "approval#" + digest(genuine)}}
    )["Item"]
    planted = "P" * 32 + "." + "Q" * 22
    aws.dynamodb.put_item(
        TableName=TABLE, Item={**stored, "pk": {"S": "approval#" + digest(planted)}}
    )
    # WHEN the planted id is used
    answer = secure(call(http("GET", planted)))
    # THEN it is not a link
    assert answer["statusCode"] == 404


def test_an_unconfirmed_callback_keeps_the_decision_so_nobody_can_contradict_it(
    aws: Aws, sfn_spy: CountingSfn
) -> None:
    # GIVEN the approval reaches Step Functions but the answer is lost on the way back
    execution, approval_id = waiting_link(aws)
    sfn_spy.fail_with = "lost answer"
    form = {"csrf": csrf_of(call(http("GET", approval_id))["body"]), "decision": "approve"}
    # WHEN the approver approves
    answer = call(http("POST", approval_id, form=form))
    # THEN the page says try later, yet the decision stays recorded (a second click is 409)
    assert answer["statusCode"] == 503
    assert item(aws, "approval#" + digest(approval_id))["status"] == "DECIDED"
    assert last_callback(aws, approval_id)["callback"] == "UNCONFIRMED"
    assert call(http("POST", approval_id, form=form))["statusCode"] == 409
    assert finished(aws, execution)["status"] == "SUCCEEDED"


def redeployed(monkeypatch: pytest.MonkeyPatch) -> CountingSfn:
    """New containers (after a profile redeploy), their Step Functions calls counted."""
    approval_app._dependencies.cache_clear()
    spy = CountingSfn(boto3.client("stepfunctions", region_name=REGION))
    deps = dataclasses.replace(approval_app._dependencies(), sfn=spy)
    monkeypatch.setattr(approval_app, "_dependencies", lambda: deps)
    return spy


def test_an_approver_removed_from_the_profile_before_deciding_is_refused_and_audited(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a link mailed to the approver, whose page is open
    execution, approval_id = waiting_link(aws)
    page = call(http("GET", approval_id))["body"]
    # AND the profile is redeployed without them before they decide
    write_profiles(aws.profiles_file, [SECOND], [ESCALATION])
    sfn = redeployed(monkeypatch)
    # WHEN they press Approve
    form = {"csrf": csrf_of(page), "decision": "approve", "reason": "still me"}
    answer = secure(call(http("POST", approval_id, form=form)))
    # THEN 403, no SendTask* call, the records still PENDING, and a `denied` audit item
    assert answer["statusCode"] == 403
    assert "no longer names you" in answer["body"]
    assert sfn.calls == 0
    assert item(aws, "approval#" + digest(approval_id))["status"] == "PENDING"
    (denied,) = audits(aws, approval_id)
    assert (denied["event"], denied["approver"]) == ("denied", APPROVER)
    assert (denied["decision"], denied["reason"]) == ("approve", "still me")
    assert denied["source_ip"] == "198.51.100.7"
    assert aws.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"


def test_a_certificate_moved_to_another_profile_cannot_be_decided_by_the_old_approver(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a link mailed to web's approver; then the certificate is re-tagged to profile other
    execution, approval_id = waiting_link(aws)
    aws.acm.add_tags_to_certificate(
        CertificateArn=cert_arn(), Tags=[{"Key": "certrelay:profile", "Value": "other"}]
    )
    sfn = redeployed(monkeypatch)
    # WHEN the old approver rejects
    answer = post(approval_id, decision="reject")
    # THEN 403 and no callback
    assert answer["statusCode"] == 403
    assert sfn.calls == 0
    assert [a["event"] for a in audits(aws, approval_id)] == ["denied"]
    assert aws.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"


def test_a_retried_callback_appends_and_never_overwrites_the_first_attempts_audit(
    aws: Aws, sfn_spy: CountingSfn
) -> None:
    # GIVEN a first attempt whose callback Step Functions throttled
    execution, approval_id = waiting_link(aws)
    sfn_spy.fail_with = "ThrottlingException"
    assert post(approval_id, reason="first try")["statusCode"] == 503
    first = audits(aws, approval_id)
    # WHEN the approver tries again and it goes through
    assert post(approval_id, reason="second try")["statusCode"] == 200
    assert finished(aws, execution)["status"] == "SUCCEEDED"
    # THEN the first attempt's items are unchanged, and the second attempt's were appended
    after = audits(aws, approval_id)
    assert after[: len(first)] == first
    assert [(a["event"], a.get("callback"), a["reason"]) for a in after] == [
        ("decided", None, "first try"),
        ("callback", "FAILED", "first try"),
        ("decided", None, "second try"),
        ("callback", "DELIVERED", "second try"),
    ]
    assert len({a["pk"] for a in after}) == 4


def test_the_stored_task_token_is_encrypted_and_removed_once_decided(aws: Aws) -> None:
    # GIVEN a request round that stored its token
    execution, token = waiting_execution(aws)
    request(token, execution)
    approval_id = links(mails(aws))[APPROVER]
    pk = "request#" + digest(token)
    stored = item(aws, pk)
    # THEN the table holds no plaintext token, only a ciphertext bound to the record
    assert token not in json.dumps(table(aws))
    assert "token" not in stored
    kms = boto3.client("kms", region_name=REGION)
    blob = base64.b64decode(stored["token_ciphertext"])
    plain = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"certrelay:record": pk})
    assert plain["Plaintext"].decode() == token
    with pytest.raises(ClientError):  # the same ciphertext opens for no other record
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"certrelay:record": "request#x"})
    # WHEN the approver approves
    assert post(approval_id)["statusCode"] == 200
    # THEN the execution resumed and the decided record keeps no token at all
    assert finished(aws, execution)["status"] == "SUCCEEDED"
    decided = item(aws, pk)
    assert decided["status"] == "DECIDED"
    assert "token_ciphertext" not in decided


def test_a_decision_too_late_leaves_no_token_behind(aws: Aws) -> None:
    # GIVEN a wait that timed out before the approver's click
    execution, token = waiting_execution(aws, timeout_seconds=1)
    request(token, execution)
    approval_id = links(mails(aws))[APPROVER]
    page = call(http("GET", approval_id))["body"]
    assert finished(aws, execution)["status"] == "FAILED"
    # WHEN the approver approves
    form = {"csrf": csrf_of(page), "decision": "approve"}
    assert call(http("POST", approval_id, form=form))["statusCode"] == 410
    # THEN the request is closed as EXPIRED without its token
    closed = item(aws, "request#" + digest(token))
    assert closed["status"] == "EXPIRED"
    assert "token_ciphertext" not in closed
