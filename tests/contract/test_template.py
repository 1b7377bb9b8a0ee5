"""template.yaml is deployable and safe: cfn-lint clean, least privilege, the rule as designed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from certrelay.local.template import translate

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return translate(
        TEMPLATE,
        {"FallbackOwnerEmail": "security@example.com"},
        "us-east-1",
        inline_definitions=False,  # as `sam package` leaves it: the ASL file goes to S3
    ).cloudformation


def cfn_lint(*args: str) -> subprocess.CompletedProcess[str]:
    beside_python = Path(sys.executable).with_name("cfn-lint")  # the venv's, with its plugins
    executable = str(beside_python) if beside_python.exists() else shutil.which("cfn-lint")
    assert executable, "cfn-lint is not installed (pip install -e '.[dev]')"
    return subprocess.run(
        [executable, *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_cfn_lint_is_clean_with_the_serverless_rules():
    result = cfn_lint(str(TEMPLATE), "-a", "cfn_lint_serverless.rules")

    assert result.returncode == 0, result.stdout + result.stderr


def test_translated_template_is_clean_with_the_serverless_rules(translated, tmp_path):
    path = tmp_path / "translated.json"
    path.write_text(json.dumps(translated), encoding="utf-8")

    result = cfn_lint(str(path), "-a", "cfn_lint_serverless.rules")

    assert result.returncode == 0, result.stdout + result.stderr


def policy_statements(translated: dict[str, Any]):
    for logical_id, resource in translated["Resources"].items():
        properties = resource.get("Properties", {})
        documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
        documents += [properties[k] for k in ("KeyPolicy", "PolicyDocument") if k in properties]
        for document in documents:
            for statement in document["Statement"]:
                yield logical_id, statement


def test_no_statement_allows_every_action(translated):
    statements = list(policy_statements(translated))

    assert statements
    for logical_id, statement in statements:
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        assert "*" not in actions, f"{logical_id}: Action '*'"


def allowed(translated: dict[str, Any], *actions: str) -> set[str]:
    return {
        logical_id
        for logical_id, statement in policy_statements(translated)
        if statement.get("Effect") == "Allow" and set(actions) & set(_actions(statement))
    }


def test_only_the_state_machine_writes_the_event_gate(translated):
    gate = translated["Resources"]["EventTable"]
    writers = {
        logical_id
        for logical_id, statement in policy_statements(translated)
        if "dynamodb:PutItem" in _actions(statement)
        and statement["Resource"] == {"Fn::GetAtt": ["EventTable", "Arn"]}
    }

    assert gate["Type"] == "AWS::DynamoDB::Table"
    assert writers == {"CertificateLifecycleStateMachineRole"}


def test_only_the_workflow_and_its_notifiers_publish(translated):
    assert allowed(translated, "sns:Publish") == {
        "CertificateLifecycleStateMachineRole",
        "RequestApprovalFunctionRole",
        "NotifyFunctionRole",
    }


def test_only_the_approval_function_and_the_install_callback_may_answer_a_waiting_task(
    translated,
):
    assert allowed(
        translated, "states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"
    ) == {"ApprovalFunctionRole", "InstallCallbackAnswersTasks"}
    answers = translated["Resources"]["InstallCallbackAnswersTasks"]["Properties"]
    assert answers["Roles"] == [{"Ref": "InstallCallbackFunctionRole"}]
    (statement,) = answers["PolicyDocument"]["Statement"]
    assert statement["Action"] == "states:SendTaskSuccess"
    assert statement["Resource"] == {"Ref": "CertificateLifecycleStateMachine"}


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else actions


def test_rule_has_retry_policy_and_dead_letter_queue(translated):
    (target,) = translated["Resources"]["CertificateEventsRule"]["Properties"]["Targets"]

    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert "DeadLetterConfig" in target


def test_state_machine_logs_no_execution_data_and_traces(translated):
    properties = translated["Resources"]["CertificateLifecycleStateMachine"]["Properties"]

    assert properties["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert properties["TracingConfiguration"]["Enabled"] is True


def test_event_table_is_encrypted_and_expires_records(translated):
    properties = translated["Resources"]["EventTable"]["Properties"]

    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_topic_is_encrypted_with_the_stacks_own_key(translated):
    topic = translated["Resources"]["NotificationTopic"]["Properties"]

    assert topic["KmsMasterKeyId"] == {"Ref": "NotificationKey"}


def test_rule_pattern_takes_the_threshold_days_from_the_parameter():
    from certrelay.local.engine import LocalEngine

    with LocalEngine(parameters={"ExpiryThresholdDays": "20,2"}) as engine:
        (rule,) = engine.stack.rules  # type: ignore[union-attr]
        approaching = json.loads((EVENTS / "approaching-expiration.json").read_text())
        approaching["account"] = engine.fleet.account
        from moto.events.models import EventPattern

        pattern = EventPattern.load(json.dumps(rule.pattern))
        matches = {
            days: pattern.matches_event({**approaching, "detail": {"DaysToExpiry": days}})
            for days in (45, 20, 3, 2)
        }

    assert matches == {45: False, 20: True, 3: False, 2: True}


def test_install_document_in_the_template_is_generated_from_the_scripts(translated):
    from certrelay.ssm_document import stack_document

    content = translated["Resources"]["InstallDocument"]["Properties"]["Content"]

    assert content == stack_document(), "run: python -m certrelay.ssm_document"


def test_only_the_distribute_function_may_send_commands(translated):
    assert allowed(translated, "ssm:SendCommand") == {"DistributeFunctionRole"}
    assert allowed(translated, "acm:ExportCertificate") == {"ExportFunctionRole"}


def test_bundle_bucket_is_private_versioned_and_refuses_plain_puts(translated):
    bucket = translated["Resources"]["CertificateBucket"]["Properties"]
    policy = translated["Resources"]["CertificateBucketPolicy"]["Properties"]["PolicyDocument"]

    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] > 0
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["BucketKeyEnabled"] is True
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    denials = {s["Sid"]: s for s in policy["Statement"] if s["Effect"] == "Deny"}
    assert denials["TlsOnly"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert denials["KmsEncryptedPutsOnly"]["Condition"] == {
        "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}
    }


KNOWN_METRICS = {  # namespace -> metric -> (dimension, resource type it names)
    "AWS/States": {
        m: ("StateMachineArn", "AWS::StepFunctions::StateMachine")
        for m in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionThrottled")
    },
    "AWS/Events": {"FailedInvocations": ("RuleName", "AWS::Events::Rule")},
    "AWS/SQS": {"ApproximateNumberOfMessagesVisible": ("QueueName", "AWS::SQS::Queue")},
    "AWS/Lambda": {m: ("FunctionName", "AWS::Lambda::Function") for m in ("Errors", "Throttles")},
    "AWS/SNS": {"NumberOfNotificationsFailed": ("TopicName", "AWS::SNS::Topic")},
}


def test_every_alarm_watches_a_real_metric_of_a_stack_resource(translated):
    resources = translated["Resources"]
    alarms = {
        k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    watched = set()
    for name, alarm in alarms.items():
        dimension, resource_type = KNOWN_METRICS[alarm["Namespace"]][alarm["MetricName"]]
        ((dim,),) = [alarm["Dimensions"]]
        assert dim["Name"] == dimension, name
        value = dim["Value"]
        target = value.get("Ref") or value.get("Fn::GetAtt", [None])[0]
        assert resources[target]["Type"] == resource_type, name
        assert alarm["AlarmActions"] == [{"Ref": "OpsTopic"}], name
        watched.add((alarm["MetricName"], target))
    functions = [k for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"]
    for function in functions:
        assert {("Errors", function), ("Throttles", function)} <= watched, function
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionThrottled"):
        assert (metric, "CertificateLifecycleStateMachine") in watched
    assert ("FailedInvocations", "CertificateEventsRule") in watched
    assert ("ApproximateNumberOfMessagesVisible", "CertificateEventsDeadLetterQueue") in watched
    assert ("NumberOfNotificationsFailed", "NotificationTopic") in watched


def test_approval_records_expire_on_their_own_ttl_attribute(translated):
    ttl = translated["Resources"]["ApprovalTable"]["Properties"]["TimeToLiveSpecification"]

    assert ttl == {"AttributeName": "purge_at", "Enabled": True}


def test_events_out_and_sweep_reminders_each_have_their_own_source(translated):
    """Who may put what on the bus: the workflow's outcomes, the sweep's reminders, no one else."""
    sources: dict[str, set[str]] = {}
    for name, resource in translated["Resources"].items():
        for policy in (resource.get("Properties") or {}).get("Policies", []) or []:
            for statement in policy["PolicyDocument"]["Statement"]:
                if "events:PutEvents" in _actions(statement):
                    source = statement["Condition"]["StringEquals"]["events:source"]
                    sources.setdefault(source, set()).add(name)

    assert sources == {
        "certrelay": {
            "CertificateLifecycleStateMachineRole",
            "RequestApprovalFunctionRole",
            "FindingsFunctionRole",
        },
        "certrelay.sweep": {"SweepFunctionRole"},
    }


def test_sweep_runs_on_the_schedule_parameter_and_its_events_reach_the_rule(translated):
    from moto.events.models import EventPattern

    (schedule,) = [
        r["Properties"]
        for r in translated["Resources"].values()
        if r["Type"] == "AWS::Scheduler::Schedule"
    ]
    rule = translated["Resources"]["CertificateEventsRule"]["Properties"]
    text = rule["EventPattern"]["Fn::Sub"].replace("${AWS::AccountId}", "1")
    pattern = json.loads(text.replace("${ExpiryThresholdDays}", "30"))
    reminder = {
        "source": "certrelay.sweep",
        "account": "1",
        "detail-type": "ACM Certificate Approaching Expiration",
        "detail": {"DaysToExpiry": 30},
    }

    assert schedule["ScheduleExpression"] == {"Ref": "SweepSchedule"}
    assert schedule["Target"]["Arn"] == {"Fn::GetAtt": ["SweepFunction", "Arn"]}
    assert {"DeadLetterConfig", "RetryPolicy"} <= set(schedule["Target"])
    rule_pattern = EventPattern.load(json.dumps(pattern))
    assert rule_pattern.matches_event(reminder)
    for other in ("ACM Certificate Expired", "ACM Certificate Available"):
        spoofed = {**reminder, "detail-type": other}
        assert not rule_pattern.matches_event(spoofed), f"the sweep never sends {other}"
        assert rule_pattern.matches_event({**spoofed, "source": "aws.acm"})


def test_dashboard_charts_every_business_metric_the_functions_emit(translated):
    """Each count() call's metric, with exactly its dimensions, has a SEARCH on the dashboard."""
    import re

    emitted = {
        (name, frozenset(re.findall(r'"(\w+)":', dimensions)) | {"service"})
        for app in (ROOT / "functions").glob("*/app.py")
        for name, dimensions in re.findall(
            r'count\(\s*"(\w+)",\s*(\{[^}]*\})', app.read_text(encoding="utf-8")
        )
    }
    body = translated["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]
    widgets = json.loads(body["Fn::Sub"])["widgets"]
    charted = {
        (name, frozenset(keys.split(",")[1:]))
        for widget in widgets
        for row in widget["properties"]["metrics"]
        for line in row
        if isinstance(line, dict)
        for keys, name in re.findall(
            r"\{(certrelay[\w,]*)\} MetricName=\"(\w+)\"", line["expression"]
        )
    }

    names = {name for name, _ in emitted}
    assert {"EventsTriaged", "CertificatesByDaysToExpiry", "Approvals", "Distributions"} <= names
    assert charted == emitted
