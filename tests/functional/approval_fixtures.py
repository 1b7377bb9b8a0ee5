"""Builders for the approval tests: moto AWS (table, key, topic + queue, a waiting execution),
the two handlers, and API Gateway HTTP API v2 events built by hand."""

from __future__ import annotations

import base64
import copy
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
import yaml
from moto import mock_aws

from certrelay.approval_links import digest
from certrelay.approval_sso import SESSION_COOKIE, new_session
from certrelay.local.moto_fixes import closed_tasks_answer_timed_out, executions_announce_progress
from certrelay.workflow import check_result
from functions.approval import app as approval_app
from functions.request_approval import app as request_app

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
TABLE = "certrelay-approvals"
KEY = "k3y-for-tests-0123456789abcdefghijklmnop"  # >= 32 characters
BASE_URL = "https://abc123.execute-api.us-east-1.amazonaws.com"
APPROVER = "web-lead@example.com"
SECOND = "deputy@example.com"
ESCALATION = "ops@example.com"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Type": "text/html; charset=utf-8",
}


@dataclass
class Aws:
    dynamodb: Any
    sfn: Any
    sqs: Any
    queue_url: str
    acm: Any
    profiles_file: Path


def cert_arn() -> str:
    """The ARN of the test's certificate in moto ACM (tagged certrelay:profile=web)."""
    return os.environ["TEST_CERTIFICATE_ARN"]


def write_profiles(path: Path, approvers: list[str], escalation: list[str]) -> None:
    """The deployed profiles: profile web with these approvers and escalation contacts."""
    web = {"owners": ["web-team@example.com"], "approvers": approvers, "escalation": escalation}
    path.write_text(yaml.safe_dump({"profiles": {"web": web, "other": {"approvers": [SECOND]}}}))


@dataclass(frozen=True)
class FakeContext:
    function_name: str = "certrelay-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:certrelay-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"


class Progress:
    """Wakes the waits below when an execution records a history event or ends (moto's
    interpreter runs executions on threads): they wake on what they wait for, not on a poll."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._generation = 0

    def bump(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    @property
    def generation(self) -> int:
        return self._generation

    def wait_after(self, generation: int, deadline: float) -> None:
        """Until something happened since `generation` was read, the deadline passed, or a
        quarter second went by (a change no hook announces is still seen, only later)."""
        timeout = min(0.25, max(0.0, deadline - time.monotonic()))
        with self._changed:
            self._changed.wait_for(lambda: self._generation != generation, timeout=timeout)


PROGRESS = Progress()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Aws]:
    """Moto with the approval table, the key secret, the token key, the mail topic (read through a
    queue), a certificate tagged with profile web, the deployed profiles, and a state machine
    whose one task waits for a token, like "Request Approval" does."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    config = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    with (
        mock_aws(config=config),  # type: ignore[arg-type]
        closed_tasks_answer_timed_out(),
        executions_announce_progress(PROGRESS.bump, lambda _arn: PROGRESS.bump()),
    ):
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(  # as template.yaml's ApprovalTable, with its approver index
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "approver", "AttributeType": "S"},
                {"AttributeName": "expires_at", "AttributeType": "N"},
            ],
            GlobalSecondaryIndexes=[approver_index()],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.update_time_to_live(
            TableName=TABLE,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
        secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="certrelay/approval-key", SecretString=KEY
        )["ARN"]
        sns = boto3.client("sns", region_name=REGION)
        topic = sns.create_topic(Name="certrelay-notifications")["TopicArn"]
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="mailbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
        token_key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
        acm = boto3.client("acm", region_name=REGION)
        certificate = acm.request_certificate(
            DomainName="www.example.com", Tags=[{"Key": "certrelay:profile", "Value": "web"}]
        )["CertificateArn"]
        profiles_file = tmp_path / "profiles.yaml"
        write_profiles(profiles_file, [APPROVER, SECOND], [ESCALATION])
        for name, value in {
            "APPROVAL_TABLE_NAME": TABLE,
            "APPROVAL_KEY_SECRET_ARN": secret,
            "APPROVAL_TOKEN_KEY_ARN": token_key,
            "APPROVAL_BASE_URL": BASE_URL + "/",
            "NOTIFICATION_TOPIC_ARN": topic,
            "EVENT_TABLE_NAME": TABLE,  # notify's per-recipient markers; the same key shape
            "PROFILES_FILE": str(profiles_file),
            "TEST_CERTIFICATE_ARN": certificate,
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("SSO_ISSUER", raising=False)
        clears = [request_app._dependencies.cache_clear, approval_app._dependencies.cache_clear]
        for clear in clears:
            clear()
        sfn = boto3.client("stepfunctions", region_name=REGION)
        yield Aws(dynamodb, sfn, sqs, queue_url, acm, profiles_file)
        for clear in clears:  # a test may have replaced _dependencies by now
            clear()


def approver_index() -> dict[str, Any]:
    """template.yaml's ApproverIndex, read from the template so the two cannot drift apart."""
    return copy.deepcopy(_template_approver_index())


@cache
def _template_approver_index() -> dict[str, Any]:
    """Read once per test process (the template does not change while the tests run)."""
    from cfnlint.decode import decode

    template, _ = decode(str(ROOT / "template.yaml"))
    assert template is not None
    (index,) = template["Resources"]["ApprovalTable"]["Properties"]["GlobalSecondaryIndexes"]
    return dict(index)


def waiting_execution(aws: Aws, *, timeout_seconds: int = 60) -> tuple[str, str]:
    """Start an execution that waits for a task token; return its ARN and the token."""
    sns = boto3.client("sns", region_name=REGION)
    waiter_topic = sns.create_topic(Name="waiter")["TopicArn"]
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName=f"sfn-{time.monotonic_ns()}", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    definition = {
        "Comment": "Waits for a decision like Request Approval does.",
        "StartAt": "Request Approval",
        "States": {
            "Request Approval": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
                "Parameters": {"TopicArn": waiter_topic, "Message": {"token.$": "$$.Task.Token"}},
                "TimeoutSeconds": timeout_seconds,
                "End": True,
            }
        },
    }
    machine = aws.sfn.create_state_machine(
        name=f"approval-{time.monotonic_ns()}", definition=json.dumps(definition), roleArn=role
    )["stateMachineArn"]
    execution = aws.sfn.start_execution(
        stateMachineArn=machine, name=f"run-{time.monotonic_ns()}", input="{}"
    )["executionArn"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen = PROGRESS.generation
        for event in aws.sfn.get_execution_history(executionArn=execution)["events"]:
            if event["type"] == "TaskScheduled":
                parameters = json.loads(event["taskScheduledEventDetails"]["parameters"])
                return execution, parameters["Message"]["token"]
        PROGRESS.wait_after(seen, deadline)
    raise AssertionError(f"no TaskScheduled event for {execution}")


def finished(aws: Aws, execution: str, *, within: float = 10.0) -> dict[str, Any]:
    """describe_execution once the execution stops running (or fail with its history)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        seen = PROGRESS.generation
        described: dict[str, Any] = aws.sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        PROGRESS.wait_after(seen, deadline)
    history = aws.sfn.get_execution_history(executionArn=execution)["events"]
    raise AssertionError(f"{execution} still RUNNING; history: {[e['type'] for e in history]}")


def triage_output(
    *,
    domain: str = "www.example.com",
    approvers: list[str] | None = None,
    escalation: list[str] | None = None,
    timeout_seconds: int = 3600,
) -> dict[str, Any]:
    """A "distribute" decision as Triage Event returns it, with its approval block."""
    return {
        "route": "distribute",
        "reason": "DistributionPending",
        "severity": "MEDIUM",
        "summary": f"{domain} was renewed and is ready to distribute.",
        "event_kind": "Available",
        "certificate": {
            "arn": cert_arn(),
            "domain": domain,
            "type": "AMAZON_ISSUED",
            "status": "ISSUED",
            "serial": "0a:1b:2c:3d",
            "not_after": "2026-03-01T12:00:00Z",
            "days_to_expiry": 395,
            "in_use": True,
        },
        "owners": ["web-team@example.com"],
        "profile": "web",
        "approval": {
            "mode": "human",
            "approver": "human",
            "reason": "PolicyHuman",
            "reasons": ["PolicyHuman"],
            "approvers": [APPROVER] if approvers is None else approvers,
            "escalation": [ESCALATION] if escalation is None else escalation,
            "timeout_seconds": timeout_seconds,
            "escalation_timeout_seconds": 7200,
            "targets": 3,
        },
    }


def request(token: str, execution: str, round_: str = "request", **decision: Any) -> dict[str, Any]:
    """Invoke the request-approval handler as the state machine does; return its result."""
    payload = {
        "token": token,
        "execution": execution,
        "state": {"request": "Request Approval", "escalation": "Escalate Approval"}[round_],
        "decision": triage_output(**decision),
    }
    result: dict[str, Any] = request_app.handler(payload, FakeContext())  # type: ignore[arg-type]
    check_result(payload["state"], result)  # the receipt's closed model (HIS-02)
    return result


def mails(aws: Aws) -> list[dict[str, Any]]:
    """Every SNS message that reached the mailbox queue since the last call."""
    found: list[dict[str, Any]] = []
    for _ in range(100):  # 1,000 messages: far more than any test sends
        batch = aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10)
        messages = batch.get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
    raise AssertionError("the mailbox queue never ran dry")


def links(sent: list[dict[str, Any]]) -> dict[str, str]:
    """recipient -> link id, read from the mails' bodies."""
    found = {}
    for mail in sent:
        recipient = mail["MessageAttributes"]["recipient"]["Value"]
        line = next(ln for ln in mail["Message"].splitlines() if BASE_URL in ln)
        found[recipient] = line.strip().removeprefix(f"{BASE_URL}/approvals/")
    return found


def http(
    method: str,
    approval_id: str,
    *,
    form: dict[str, str] | None = None,
    body: str | None = None,
    base64_encoded: bool = False,
    query: str = "",
    email: str | None = None,
    source_ip: str = "198.51.100.7",
    cookies: list[str] | None = None,
    path: str | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload v2) event for /approvals/{id} (or another `path`)."""
    if form is not None:
        body = urlencode(form)
    if body is not None and base64_encoded:
        body = base64.b64encode(body.encode()).decode()
    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "abc123",
        "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
        "http": {
            "method": method,
            "path": f"/approvals/{approval_id}",
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": BROWSER,
        },
        "requestId": "req-1",
        "routeKey": f"{method} /approvals/{{id}}",
        "stage": "$default",
        "time": datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(time.time() * 1000),
    }
    headers = {"host": context["domainName"], "user-agent": BROWSER}
    if body is not None:
        headers["content-type"] = "application/x-www-form-urlencoded"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": context["routeKey"],
        "rawPath": f"/approvals/{approval_id}",
        "rawQueryString": query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": base64_encoded,
    }
    if query:
        event["queryStringParameters"] = dict(part.split("=", 1) for part in query.split("&"))
    if body is not None:
        event["body"] = body
    if email is not None:  # signed in through SSO: the session cookie the callback sets
        event["cookies"] = [
            f"{SESSION_COOKIE}={new_session(KEY.encode(), email, datetime.now(UTC))}"
        ]
    if cookies is not None:
        event["cookies"] = cookies
    if path is not None:
        event["rawPath"] = context["http"]["path"] = path
        event["routeKey"] = context["routeKey"] = f"{method} {path}"
    return event


def call(event: dict[str, Any]) -> dict[str, Any]:
    """The approval API's answer to one event."""
    answer: dict[str, Any] = approval_app.handler(event, FakeContext())  # type: ignore[arg-type]
    return answer


def table(aws: Aws) -> list[dict[str, Any]]:
    """Every item in the approval table, in key order: for before/after comparisons."""
    items = aws.dynamodb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda item: item["pk"]["S"])


def audits(aws: Aws, approval_id: str) -> list[dict[str, Any]]:
    """The audit items of one link, oldest first (their keys sort by time)."""
    prefix = "audit#" + digest(approval_id) + "#"
    return [
        {k: next(iter(v.values())) for k, v in found.items()}
        for found in table(aws)
        if found["pk"]["S"].startswith(prefix)
    ]


def last_callback(aws: Aws, approval_id: str) -> dict[str, Any]:
    """The latest callback result appended for a link ({} when none)."""
    results = [a for a in audits(aws, approval_id) if a.get("event") == "callback"]
    return results[-1] if results else {}


def item(aws: Aws, pk: str) -> dict[str, Any]:
    found = aws.dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": pk}}, ConsistentRead=True)
    return {k: next(iter(v.values())) for k, v in found.get("Item", {}).items()}


def csrf_of(page: str) -> str:
    marker = 'name="csrf" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]
