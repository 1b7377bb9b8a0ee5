"""template.yaml is deployable and safe: cfn-lint clean, least privilege, the rule as designed."""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from certrelay.export_guard import CLAIM, DAY
from certrelay.mail_markers import NOTIFIED
from tests.contract.patterns import certificate_rule_text

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
NESTED_TEMPLATES = sorted((ROOT / "templates").glob("*.yaml"))  # operations, install document
EVENTS = ROOT / "events"


def cfn_lint(*args: str) -> subprocess.CompletedProcess[str]:
    """`cfn-lint ARGS` as its command runs it (cfnlint.runner.cli.main: the same argument
    parsing, configuration, rules and exit code), in this process: a child cost each run about
    a second more (the interpreter, cfn-lint's imports, its schemas) than the lint itself."""
    from cfnlint.runner.cli import main

    output = io.StringIO()
    with (
        mock.patch.object(sys, "argv", ["cfn-lint", *args]),
        contextlib.redirect_stdout(output),
        pytest.raises(SystemExit) as exited,  # main() always exits with the lint's code
    ):
        main()
    code = exited.value.code
    returncode = code if isinstance(code, int) else 0 if code is None else 1
    return subprocess.CompletedProcess(["cfn-lint", *args], returncode, output.getvalue(), "")


def test_cfn_lint_is_clean_with_the_serverless_rules():
    assert NESTED_TEMPLATES, "template.yaml's nested templates are under templates/"

    result = cfn_lint(str(TEMPLATE), *map(str, NESTED_TEMPLATES), "-a", "cfn_lint_serverless.rules")

    assert result.returncode == 0, result.stdout + result.stderr


def test_packaged_parent_template_is_clean_with_the_serverless_rules(tmp_path):
    """The parent alone, as `sam package` leaves it: nested stacks point at uploaded templates."""
    from certrelay.local.template import translate

    packaged = translate(
        TEMPLATE,
        {"FallbackOwnerEmail": "security@example.com"},
        "us-east-1",
        inline_definitions=False,
    ).cloudformation
    path = tmp_path / "packaged.json"
    path.write_text(json.dumps(packaged), encoding="utf-8")

    result = cfn_lint(str(path), "-a", "cfn_lint_serverless.rules")

    assert result.returncode == 0, result.stdout + result.stderr


def test_translated_template_is_clean_with_the_serverless_rules(translated, tmp_path):
    path = tmp_path / "translated.json"
    path.write_text(json.dumps(translated), encoding="utf-8")

    result = cfn_lint(str(path), "-a", "cfn_lint_serverless.rules")

    assert result.returncode == 0, result.stdout + result.stderr


def single_mode(statements: list[Any]) -> list[dict[str, Any]]:
    """The statements a single-account stack gets: hub mode's (`Fn::If` on IsHub, admitting the
    organisation's servers) are left out here and checked in tests/contract/test_hub_template.py."""
    kept = []
    for statement in statements:
        if set(statement) == {"Fn::If"}:
            condition, _hub, single = statement["Fn::If"]
            assert condition == "IsHub", statement
            if single != {"Ref": "AWS::NoValue"}:
                kept.append(single)
        else:
            kept.append(statement)
    return kept


def in_mode(node: Any, *, hub: bool) -> Any:
    """`node` with each `Fn::If` on IsHub decided (AWS::NoValue dropped); others kept."""
    if isinstance(node, list):
        return [in_mode(item, hub=hub) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Fn::If"} and node["Fn::If"][0] == "IsHub":
        return in_mode(node["Fn::If"][1 if hub else 2], hub=hub)
    decided = {key: in_mode(value, hub=hub) for key, value in node.items()}
    return {k: v for k, v in decided.items() if v != {"Ref": "AWS::NoValue"}}


def hub_mode_only(statements: list[Any]) -> list[dict[str, Any]]:
    """The statements only a hub gets."""
    return [s["Fn::If"][1] for s in statements if set(s) == {"Fn::If"}]


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
    """The resources with an Allow statement granting any of `actions`, wildcards included."""
    return {
        logical_id
        for logical_id, statement in policy_statements(translated)
        if statement.get("Effect") == "Allow" and any(grants(statement, a) for a in actions)
    }


def grants(statement: dict[str, Any], action: str) -> bool:
    """Whether `statement` names `action` as IAM reads it: `*` and `?` are wildcards, names are
    case-insensitive, and a NotAction statement grants every action it does not match."""

    def matched(patterns: list[str]) -> bool:
        return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in patterns)

    if "NotAction" in statement:
        return not matched(_listed(statement["NotAction"]))
    return matched(_actions(statement))


def test_only_the_state_machine_writes_the_event_gate(translated):
    """The notify function writes its per-recipient markers there, but only under `notified#`
    (dynamodb:LeadingKeys), so it can neither plant nor clear an event's gate record."""
    gate = translated["Resources"]["EventTable"]
    writes = [
        (logical_id, statement)
        for logical_id, statement in policy_statements(translated)
        if "dynamodb:PutItem" in _actions(statement)
        and statement["Resource"] == {"Fn::GetAtt": ["EventTable", "Arn"]}
    ]
    markers_only = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [NOTIFIED + "*"]}}
    export_records_only = {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{CLAIM}*", f"{DAY}*"]}
    }
    own_records = (markers_only, export_records_only)
    writers = {logical_id for logical_id, s in writes if s.get("Condition") not in own_records}
    marker_writers = {logical_id for logical_id, s in writes if s.get("Condition") == markers_only}
    export_writers = {
        logical_id for logical_id, s in writes if s.get("Condition") == export_records_only
    }

    assert gate["Type"] == "AWS::DynamoDB::Table"
    assert writers == {"CertificateLifecycleStateMachineRole"}
    assert marker_writers == {"NotifyFunctionRole"}
    assert export_writers == {"ExportFunctionRole"}  # the export cost guard's claims and counts


def test_only_the_workflow_and_its_notifiers_publish(translated):
    assert allowed(translated, "sns:Publish") == {
        "CertificateLifecycleStateMachineRole",
        "RequestApprovalFunctionRole",
        "NotifyFunctionRole",
        "DigestFunctionRole",  # the daily digest, one mail per owner
        "OrgSweepFunctionRole",  # hub mode: the organisation sweep's failed pairs, to OpsTopic
        "OpsTopicPolicy",  # this account's CloudWatch alarms, to OpsTopic only
    }
    (alarms,) = [
        s
        for s in translated["Resources"]["OpsTopicPolicy"]["Properties"]["PolicyDocument"][
            "Statement"
        ]
        if s["Effect"] == "Allow"
    ]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Resource"] == {"Ref": "OpsTopic"}


ANSWER_A_TASK = ("states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat")


def test_only_the_approval_function_and_the_install_callback_may_answer_a_waiting_task(
    translated,
):
    """APR-15: no other statement grants SendTask*, by name or through a wildcard."""
    assert allowed(translated, *ANSWER_A_TASK) == {
        "ApprovalFunctionRole",
        "InstallCallbackAnswersTasks",
    }
    answers = translated["Resources"]["InstallCallbackAnswersTasks"]["Properties"]
    assert answers["Roles"] == [{"Ref": "InstallCallbackFunctionRole"}]
    (statement,) = answers["PolicyDocument"]["Statement"]
    assert statement["Action"] == "states:SendTaskSuccess"
    # SendTask* takes no resource-level permission (Service Authorization Reference)
    assert statement["Resource"] == "*"


@pytest.mark.parametrize(
    "grant",
    [
        {"Action": "states:SendTask*"},
        {"Action": ["logs:PutLogEvents", "states:*"]},
        {"Action": "STATES:sendtasksuccess"},
        {"Action": "states:SendTask?eartbeat"},
        {"Action": "*"},
        {"NotAction": ["s3:*"]},
    ],
)
def test_a_wildcard_grant_of_send_task_on_another_role_is_caught(translated, grant):
    """APR-15: GIVEN another role (the notify function's) also granted SendTask* through a
    wildcard, a case change or NotAction, WHEN the roles that may answer a task are listed, THEN
    that role is among them, so the test above would fail."""
    template = copy.deepcopy(translated)
    policies = template["Resources"]["NotifyFunctionRole"]["Properties"]["Policies"]
    policies.append(
        {
            "PolicyName": "Widened",
            "PolicyDocument": {"Statement": [{"Effect": "Allow", **grant, "Resource": "*"}]},
        }
    )

    assert "NotifyFunctionRole" not in allowed(translated, *ANSWER_A_TASK)
    assert "NotifyFunctionRole" in allowed(template, *ANSWER_A_TASK)


def test_a_deny_or_an_unrelated_wildcard_grants_no_send_task(translated):
    """Only an Allow whose pattern matches counts: `states:Start*` or a Deny of SendTask* do not."""
    template = copy.deepcopy(translated)
    policies = template["Resources"]["NotifyFunctionRole"]["Properties"]["Policies"]
    statements = [
        {"Effect": "Allow", "Action": "states:Start*", "Resource": "*"},
        {"Effect": "Allow", "NotAction": "states:SendTask*", "Resource": "*"},
        {"Effect": "Deny", "Action": "states:SendTask*", "Resource": "*"},
    ]
    policies.append({"PolicyName": "Unrelated", "PolicyDocument": {"Statement": statements}})

    assert "NotifyFunctionRole" not in allowed(template, *ANSWER_A_TASK)


def _listed(actions: str | list[str]) -> list[str]:
    return [actions] if isinstance(actions, str) else actions


def _actions(statement: dict[str, Any]) -> list[str]:
    return _listed(statement.get("Action", []))


def test_rule_has_retry_policy_and_dead_letter_queue(translated):
    (target,) = translated["Resources"]["CertificateEventsRule"]["Properties"]["Targets"]

    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert "DeadLetterConfig" in target


def test_state_machine_logs_no_execution_data_and_traces(translated):
    properties = translated["Resources"]["CertificateLifecycleStateMachine"]["Properties"]

    logging = properties["LoggingConfiguration"]
    (destination,) = logging["Destinations"]
    group = translated["Resources"]["StateMachineLogGroup"]["Properties"]

    assert logging["IncludeExecutionData"] is False
    assert logging["Level"] in {"ERROR", "ALL"}  # OFF or FATAL would hide failed states
    assert destination["CloudWatchLogsLogGroup"]["LogGroupArn"] == {
        "Fn::GetAtt": ["StateMachineLogGroup", "Arn"]
    }
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert group["KmsKeyId"] == {"Fn::GetAtt": ["StateMachineKey", "Arn"]}
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
    """The document lives in its nested template (templates/install-document.yaml) and in the
    member template (member.yaml), which the generator both rewrites; the whole stack and every
    member stack carry exactly what the scripts make."""
    from certrelay.ssm_document import DOCUMENT_TEMPLATE, MEMBER_TEMPLATE, stack_document
    from tests.templates import read_template

    content = translated["Resources"]["InstallDocument"]["Properties"]["Content"]
    (nested,) = read_template(DOCUMENT_TEMPLATE)["Resources"].values()
    member = read_template(MEMBER_TEMPLATE)["Resources"]["InstallDocument"]

    assert content == stack_document(), "run: python -m certrelay.ssm_document"
    assert nested["Properties"]["Content"] == stack_document()
    assert member["Properties"]["Content"] == stack_document(), "python -m certrelay.ssm_document"
    assert DOCUMENT_TEMPLATE in NESTED_TEMPLATES


def test_only_the_distribute_function_may_send_commands(translated):
    assert allowed(translated, "ssm:SendCommand") == {"DistributeFunctionRole"}
    assert allowed(translated, "acm:ExportCertificate") == {"ExportFunctionRole"}


def test_only_certificates_tagged_for_a_profile_can_be_exported(translated):
    """KEY-01: ExportCertificate on certificate ARNs only, and only where the certificate carries
    a certrelay:profile tag (ACM's certificate resource takes aws:ResourceTag)."""
    grants = [
        statement
        for logical_id, statement in policy_statements(translated)
        if "acm:ExportCertificate" in _actions(statement)
    ]
    assert len(grants) == 1
    (grant,) = grants
    single, hub = in_mode(grant, hub=False), in_mode(grant, hub=True)
    assert _actions(grant) == ["acm:ExportCertificate"]
    assert single["Resource"] != "*"
    assert single["Condition"] == {"StringLike": {"aws:ResourceTag/certrelay:profile": "?*"}}
    # a hub also exports its own account's certificates in its other listed Regions
    assert hub["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:acm:*:${AWS::AccountId}:certificate/*"
    }
    assert hub["Condition"]["StringLike"] == single["Condition"]["StringLike"]
    assert set(hub["Condition"]["StringEquals"]) == {"aws:RequestedRegion"}


def _arns(resource: Any) -> list[str]:
    """Resource ARNs as text: Fn::Sub strings as written, anything else as JSON."""
    listed = resource if isinstance(resource, list) else [resource]
    return [
        r["Fn::Sub"] if isinstance(r, dict) and "Fn::Sub" in r else json.dumps(r) for r in listed
    ]


def test_send_command_reaches_only_the_stacks_document_on_servers_tagged_for_a_profile(translated):
    sends = [
        statement
        for _, statement in policy_statements(translated)
        if "ssm:SendCommand" in _actions(statement) and statement["Effect"] == "Allow"
    ]
    prefix = "arn:${AWS::Partition}:"
    account = "${AWS::Region}:${AWS::AccountId}"

    by_resource = {tuple(_arns(s["Resource"])): s for s in sends}
    document = by_resource[(f"{prefix}ssm:{account}:document/${{InstallDocument}}",)]
    servers = by_resource[
        (f"{prefix}ec2:{account}:instance/*", f"{prefix}ssm:{account}:managed-instance/*")
    ]
    assert len(sends) == 2, sends
    assert "Condition" not in document  # a tag condition on the document would never match
    assert servers["Condition"] == {"StringLike": {"ssm:resourceTag/certrelay:profile": "?*"}}
    for statement in sends:
        assert "*" not in _arns(statement["Resource"])


def test_following_a_command_stays_read_and_cancel_only(translated):
    (follow,) = [
        s for _, s in policy_statements(translated) if s.get("Sid") == "FollowTheInstallCommand"
    ]

    # no resource-level permissions exist for these three, so "*" is all IAM accepts
    assert sorted(_actions(follow)) == [
        "ssm:CancelCommand",
        "ssm:ListCommandInvocations",
        "ssm:ListCommands",
    ]
    assert follow["Resource"] == "*"


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
    denials = {s["Sid"]: s for s in single_mode(policy["Statement"]) if s["Effect"] == "Deny"}
    assert denials["TlsOnly"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert denials["KmsEncryptedPutsOnly"]["Condition"] == {
        "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}
    }


KNOWN_METRICS = {  # namespace -> metric -> (dimension, resource type it names)
    "AWS/States": {
        m: ("StateMachineArn", "AWS::StepFunctions::StateMachine")
        for m in (
            "ExecutionsFailed",
            "ExecutionsTimedOut",
            "ExecutionsAborted",
            "ExecutionThrottled",
        )
    },
    "AWS/Events": {
        m: ("RuleName", "AWS::Events::Rule")
        for m in ("FailedInvocations", "InvocationsFailedToBeSentToDlq")
    },
    "AWS/SQS": {"ApproximateNumberOfMessagesVisible": ("QueueName", "AWS::SQS::Queue")},
    "AWS/Lambda": {m: ("FunctionName", "AWS::Lambda::Function") for m in ("Errors", "Throttles")},
    "AWS/SNS": {"NumberOfNotificationsFailed": ("TopicName", "AWS::SNS::Topic")},
}


def test_every_alarm_watches_a_real_metric_of_a_stack_resource(translated):
    """REL-12: runs failed, timed out, aborted or throttled, events not delivered (nor kept in the
    dead-letter queue), dead letters, function errors and failed emails each page ops."""
    resources = translated["Resources"]
    alarms = {
        k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    watched = set()
    for name, alarm in alarms.items():
        if alarm["Namespace"] == "certrelay":  # a business metric: checked below
            continue
        dimension, resource_type = KNOWN_METRICS[alarm["Namespace"]][alarm["MetricName"]]
        ((dim,),) = [alarm["Dimensions"]]
        assert dim["Name"] == dimension, name
        value = dim["Value"]
        if "Fn::If" in value:  # hub mode's alarms: the resource when IsHub, else nothing
            _condition, value, _otherwise = value["Fn::If"]
        target = value.get("Ref") or value.get("Fn::GetAtt", [None])[0]
        assert resources[target]["Type"] == resource_type, name
        assert alarm["AlarmActions"] == [{"Ref": "OpsTopic"}], name
        watched.add((alarm["MetricName"], target))
    functions = [k for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"]
    for function in functions:
        assert {("Errors", function), ("Throttles", function)} <= watched, function
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"):
        assert (metric, "CertificateLifecycleStateMachine") in watched
    assert ("ExecutionThrottled", "CertificateLifecycleStateMachine") in watched
    for metric in ("FailedInvocations", "InvocationsFailedToBeSentToDlq"):
        assert (metric, "CertificateEventsRule") in watched
    assert ("ApproximateNumberOfMessagesVisible", "CertificateEventsDeadLetterQueue") in watched
    assert ("NumberOfNotificationsFailed", "NotificationTopic") in watched


def test_the_export_cap_alarm_watches_the_metric_the_export_function_emits(translated):
    """The cost guard pages ops: the alarm's metric is the one tasks/export.py counts, under the
    one dimension Powertools adds (service = the functions' POWERTOOLS_SERVICE_NAME)."""
    resources = translated["Resources"]
    (alarm,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"]["Namespace"] == "certrelay"
    ]
    task = (ROOT / "src" / "certrelay" / "tasks" / "export.py").read_text(encoding="utf-8")
    environment = resources["ExportFunction"]["Properties"]["Environment"]["Variables"]
    service = environment["POWERTOOLS_SERVICE_NAME"]

    assert alarm["MetricName"] == "ExportCapReached"
    assert 'count("ExportCapReached", {})' in task
    assert alarm["Dimensions"] == [{"Name": "service", "Value": service}]
    assert alarm["AlarmActions"] == [{"Ref": "OpsTopic"}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_approval_records_expire_on_their_own_ttl_attribute(translated):
    ttl = translated["Resources"]["ApprovalTable"]["Properties"]["TimeToLiveSpecification"]

    assert ttl == {"AttributeName": "purge_at", "Enabled": True}


def test_events_out_and_sweep_reminders_each_have_their_own_source(translated):
    """Who may put what on the bus: the workflow's outcomes, the sweep's reminders, no one else."""
    sources: dict[str, set[str]] = {}
    for name, resource in translated["Resources"].items():
        if resource.get("Condition") == "IsHub":
            continue  # hub mode's relay of its own events to its own bus: test_hub_template.py
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

    schedule = translated["Resources"]["SweepFunctionDaily"]["Properties"]
    rule = translated["Resources"]["CertificateEventsRule"]["Properties"]
    text = certificate_rule_text(rule).replace("${AWS::AccountId}", "1")
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
        for app in [
            *(ROOT / "functions").glob("*/app.py"),  # the handlers and the code they route to
            *(ROOT / "src" / "certrelay" / "tasks").glob("*.py"),
            ROOT / "src" / "certrelay" / "approval_api.py",
        ]
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


# --- keys (KEY-06, KEY-07, HIS-07, S3-*, SNS-01/02) --------------------------------------------

KEY_USE = {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt*", "kms:Encrypt*"}
ACCOUNT_ROOT = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}


def _keys(translated: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in translated["Resources"].items() if r["Type"] == "AWS::KMS::Key"}


def _uses_the_key(actions: list[str]) -> bool:
    return any(a in KEY_USE or a.startswith(("kms:Decrypt", "kms:GenerateData")) for a in actions)


def _principals(statement: dict[str, Any]) -> list[Any]:
    principal = statement["Principal"]
    if principal == "*":
        return ["*"]
    values = principal.get("AWS", principal.get("Service"))
    return values if isinstance(values, list) else [values]


def test_every_key_rotates_and_outlives_the_stack(translated):
    keys = _keys(translated)

    expected = {"NotificationKey", "BundleKey", "PassphraseKey", "StateMachineKey"}
    expected.add("ApprovalDataKey")
    assert expected <= set(keys)
    for name, key in keys.items():
        assert key["Properties"]["EnableKeyRotation"] is True, name
        assert key.get("DeletionPolicy") == "Retain", name
        assert key.get("UpdateReplacePolicy") == "Retain", name


def test_no_key_policy_lets_anyone_or_the_whole_account_use_a_key_unconditionally(translated):
    """GIVEN every key policy WHEN a statement allows using the key THEN its principal is a named
    role or service, or the account root bound by kms:CallerAccount and kms:ViaService; the
    root's unconditioned statement administers the key but cannot decrypt with it."""
    for name, key in _keys(translated).items():
        statements = key["Properties"]["KeyPolicy"]["Statement"]
        for statement in hub_mode_only(statements):  # '*' only for the organisation, via S3/SM
            where = f"{name}/{statement['Sid']}"
            assert statement["Principal"] == "*", where
            assert _actions(statement) == ["kms:Decrypt"], where
            organisation, accounts = statement["Condition"]["StringEquals"]["Fn::If"][1:]
            assert set(organisation) == {"aws:PrincipalOrgID", "kms:ViaService"}, where
            assert set(accounts) == {"aws:PrincipalAccount", "kms:ViaService"}, where
        for statement in single_mode(statements):
            assert statement["Effect"] == "Allow", name
            principals = _principals(statement)
            assert "*" not in principals, f"{name}/{statement['Sid']}: '*' principal"
            actions = _actions(statement)
            assert "kms:*" not in actions, f"{name}/{statement['Sid']}: kms:*"
            if principals == [ACCOUNT_ROOT] and _uses_the_key(actions):
                condition = statement.get("Condition", {}).get("StringEquals", {})
                assert {"kms:CallerAccount", "kms:ViaService"} <= set(condition), (
                    f"{name}/{statement['Sid']}: the account uses the key without conditions"
                )
            if principals == [ACCOUNT_ROOT] and "Condition" not in statement:
                assert not _uses_the_key(actions), f"{name}/{statement['Sid']}"
                assert "kms:PutKeyPolicy" in actions or "kms:Put*" in actions, name


def _key_policy_grants(translated, key: str, action: str) -> list[dict[str, Any]]:
    statements = translated["Resources"][key]["Properties"]["KeyPolicy"]["Statement"]
    return [s for s in single_mode(statements) if action in _actions(s)]


def test_state_machine_is_encrypted_with_its_own_key_and_its_policy_names_the_readers(translated):
    """HIS-03 and HIS-07: the execution history is under a customer managed key whose policy
    names the state machine's role and the approval function's; nobody else but through Step
    Functions with their own IAM grant (the rule's role, operators)."""
    machine = translated["Resources"]["CertificateLifecycleStateMachine"]["Properties"]
    log_group = translated["Resources"]["StateMachineLogGroup"]["Properties"]

    assert machine["EncryptionConfiguration"]["Type"] == "CUSTOMER_MANAGED_KMS_KEY"
    assert machine["EncryptionConfiguration"]["KmsKeyId"] == {
        "Fn::GetAtt": ["StateMachineKey", "Arn"]
    }
    assert 60 <= machine["EncryptionConfiguration"]["KmsDataKeyReusePeriodSeconds"] <= 900
    assert log_group["KmsKeyId"] == {"Fn::GetAtt": ["StateMachineKey", "Arn"]}
    named = {
        p["Fn::GetAtt"][0]
        for s in _key_policy_grants(translated, "StateMachineKey", "kms:Decrypt")
        for p in _principals(s)
        if isinstance(p, dict) and "Fn::GetAtt" in p
    }
    assert named == {
        "CertificateLifecycleStateMachineRole",
        "ApprovalFunctionRole",
        "InstallCallbackFunctionRole",
    }
    for statement in _key_policy_grants(translated, "StateMachineKey", "kms:Decrypt"):
        if "AWS" in statement["Principal"]:
            assert (
                "kms:EncryptionContext:aws:states:stateMachineArn"
                in statement["Condition"]["ArnLike"]
            ), statement["Sid"]
    rule_role = translated["Resources"]["CertificateEventsRuleRole"]["Properties"]
    (grant,) = [
        s
        for p in rule_role["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        if s["Resource"] == {"Fn::GetAtt": ["StateMachineKey", "Arn"]}
    ]
    assert grant["Condition"]["StringEquals"][
        "kms:EncryptionContext:aws:states:stateMachineArn"
    ] == {"Ref": "CertificateLifecycleStateMachine"}


def test_approval_table_and_link_secret_use_a_customer_managed_key(translated):
    """KEY-07: the link-signing secret is under a CMK and only the two approval roles read it."""
    resources = translated["Resources"]
    table = resources["ApprovalTable"]["Properties"]["SSESpecification"]
    secret = resources["ApprovalKeySecret"]["Properties"]
    policy = resources["ApprovalKeySecretPolicy"]["Properties"]

    assert table == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": {"Fn::GetAtt": ["ApprovalDataKey", "Arn"]},
    }
    assert secret["KmsKeyId"] == {"Fn::GetAtt": ["ApprovalDataKey", "Arn"]}
    assert policy["SecretId"] == {"Ref": "ApprovalKeySecret"}
    assert policy["BlockPublicPolicy"] is True
    (deny,) = policy["ResourcePolicy"]["Statement"]
    assert (deny["Effect"], deny["Action"]) == ("Deny", "secretsmanager:GetSecretValue")
    assert deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == [
        {"Fn::GetAtt": ["RequestApprovalFunctionRole", "Arn"]},
        {"Fn::GetAtt": ["ApprovalFunctionRole", "Arn"]},
    ]
    readers = allowed(translated, "secretsmanager:GetSecretValue")
    assert {"RequestApprovalFunctionRole", "ApprovalFunctionRole"} <= readers


def _kms_grants(translated, role: str) -> dict[str, set[str]]:
    """key logical id -> kms actions the role's own policies allow on it"""
    grants: dict[str, set[str]] = {}
    for policy in translated["Resources"][role]["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            resource = statement.get("Resource")
            if isinstance(resource, dict) and "Fn::GetAtt" in resource:
                key = resource["Fn::GetAtt"][0]
                if translated["Resources"][key]["Type"] == "AWS::KMS::Key":
                    grants.setdefault(key, set()).update(_actions(statement))
    return grants


def test_bundles_and_passphrases_are_on_separate_keys(translated):
    resources = translated["Resources"]
    bucket = resources["CertificateBucket"]["Properties"]["BucketEncryption"]
    (rule,) = bucket["ServerSideEncryptionConfiguration"]
    variables = resources["ExportFunction"]["Properties"]["Environment"]["Variables"]
    install = resources["ServerInstallPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    via = {
        s["Resource"]["Fn::GetAtt"][0]: s["Condition"]["StringEquals"]["kms:ViaService"]
        for s in install
        if "kms:Decrypt" in _actions(s)
    }

    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {
        "Fn::GetAtt": ["BundleKey", "Arn"]
    }
    assert variables["BUNDLE_KMS_KEY_ARN"] == {"Fn::GetAtt": ["BundleKey", "Arn"]}
    assert variables["PASSPHRASE_KMS_KEY_ARN"] == {"Fn::GetAtt": ["PassphraseKey", "Arn"]}
    assert via == {
        "BundleKey": {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"},
        "PassphraseKey": {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"},
    }
    assert set(_kms_grants(translated, "DistributeFunctionRole")) == {"BundleKey"}
    assert set(_kms_grants(translated, "ExportFunctionRole")) == {"BundleKey"}
    (export_grant,) = _key_policy_grants(translated, "PassphraseKey", "kms:GenerateDataKey")
    assert export_grant["Principal"] == {"AWS": {"Fn::GetAtt": ["ExportFunctionRole", "Arn"]}}


def test_bundle_bucket_outlives_the_stack_and_takes_puts_under_its_key_only(translated):
    """S3-03: a put naming another key (or none) is denied; the export names the bundle key."""
    bucket = translated["Resources"]["CertificateBucket"]
    policy = translated["Resources"]["CertificateBucketPolicy"]["Properties"]["PolicyDocument"]
    denials = {s["Sid"]: s for s in single_mode(policy["Statement"]) if s["Effect"] == "Deny"}
    export = (ROOT / "src" / "certrelay" / "export.py").read_text(encoding="utf-8")

    assert bucket["DeletionPolicy"] == "Retain"
    assert bucket["UpdateReplacePolicy"] == "Retain"
    assert denials["BundleKeyPutsOnly"]["Action"] == "s3:PutObject"
    assert denials["BundleKeyPutsOnly"]["Condition"] == {
        "StringNotEquals": {
            "s3:x-amz-server-side-encryption-aws-kms-key-id": {"Fn::GetAtt": ["BundleKey", "Arn"]}
        }
    }
    assert "SSEKMSKeyId=settings.bundle_kms_key_arn" in export


def test_the_local_engine_deploys_every_store_under_its_key():
    """GIVEN the template WHEN the local engine deploys it THEN the machine, the approval table
    and secret and the state machine's log group carry the stack's keys as on AWS (moto keeps
    the settings; key policies are not enforced there and are checked above)."""
    import boto3

    from certrelay.local.engine import LocalEngine

    with LocalEngine() as engine:
        stack = engine.stack
        assert stack is not None
        arn = {
            k: stack.resources[k].attributes["Arn"] for k in ("StateMachineKey", "ApprovalDataKey")
        }
        region = stack.region
        machine = boto3.client("stepfunctions", region_name=region).describe_state_machine(
            stateMachineArn=stack.state_machines["CertificateLifecycleStateMachine"]
        )
        table = boto3.client("dynamodb", region_name=region).describe_table(
            TableName=stack.ref("ApprovalTable")
        )["Table"]
        secret = boto3.client("secretsmanager", region_name=region).describe_secret(
            SecretId=stack.ref("ApprovalKeySecret")
        )
        policy = boto3.client("secretsmanager", region_name=region).get_resource_policy(
            SecretId=stack.ref("ApprovalKeySecret")
        )
        (log_group,) = boto3.client("logs", region_name=region).describe_log_groups(
            logGroupNamePrefix=stack.ref("StateMachineLogGroup")
        )["logGroups"]

    assert machine["encryptionConfiguration"] == {
        "type": "CUSTOMER_MANAGED_KMS_KEY",
        "kmsKeyId": arn["StateMachineKey"],
        "kmsDataKeyReusePeriodSeconds": 300,
    }
    assert table["SSEDescription"]["KMSMasterKeyArn"] == arn["ApprovalDataKey"]
    assert secret["KmsKeyId"] == arn["ApprovalDataKey"]
    assert "OnlyTheApprovalFunctionsReadTheKey" in policy["ResourcePolicy"]
    assert log_group["kmsKeyId"] == arn["StateMachineKey"]


def test_topics_use_the_stacks_key_and_its_policy_lets_publishers_and_alarms_encrypt(translated):
    """SNS-01/02: a customer managed key, granted to CloudWatch and, through SNS, to publishers."""
    resources = translated["Resources"]
    grants = _key_policy_grants(translated, "NotificationKey", "kms:Decrypt")
    by_principal = {json.dumps(_principals(s)): s for s in grants}

    for topic in ("NotificationTopic", "OpsTopic"):
        assert resources[topic]["Properties"]["KmsMasterKeyId"] == {"Ref": "NotificationKey"}
    alarms = by_principal[json.dumps(["cloudwatch.amazonaws.com"])]
    assert "kms:GenerateDataKey*" in _actions(alarms)
    publishers = by_principal[json.dumps([ACCOUNT_ROOT])]
    assert publishers["Condition"]["StringEquals"]["kms:ViaService"] == {
        "Fn::Sub": "sns.${AWS::Region}.amazonaws.com"
    }
    assert "kms:GenerateDataKey*" in _actions(publishers)


# --- the review's smaller template findings --------------------------------------------------


def test_ops_topic_deliveries_can_reach_their_encrypted_dead_letter_queue(translated):
    """GIVEN the on-call subscription redrives to a queue WHEN SNS sends a dead letter from
    OpsTopic THEN the queue's policy lets OpsTopic (not only the owners' topic) send it."""
    resources = translated["Resources"]
    subscription = resources["OpsSubscription"]["Properties"]
    queue_arn = subscription["RedrivePolicy"]["deadLetterTargetArn"]
    queue = queue_arn["Fn::GetAtt"][0]
    (policy,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::SQS::QueuePolicy" and {"Ref": queue} in r["Properties"]["Queues"]
    ]
    (allow,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]

    assert resources[queue]["Properties"].get("SqsManagedSseEnabled") is True
    assert allow["Principal"] == {"Service": "sns.amazonaws.com"}
    assert {"Ref": "OpsTopic"} in allow["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert {"Ref": "NotificationTopic"} in allow["Condition"]["ArnEquals"]["aws:SourceArn"]


def _threshold_pattern() -> str:
    from tests.templates import read_template

    return read_template(TEMPLATE)["Parameters"]["ExpiryThresholdDays"]["AllowedPattern"]


@pytest.mark.parametrize("days", ["07", "45,07", "0", "45,30,", "366", "1,2 ", "-1", "1.5"])
def test_threshold_days_the_rule_pattern_cannot_hold_fail_the_parameter(days):
    import re

    assert re.fullmatch(_threshold_pattern(), days) is None


def test_every_threshold_list_the_parameter_accepts_makes_a_valid_rule_pattern():
    """GIVEN every single day 0..400 and some lists WHEN the parameter accepts one THEN the rule's
    pattern built from it is JSON and matches that day's reminder."""
    import re

    from moto.events.models import EventPattern

    from tests.templates import read_template

    sam = read_template(TEMPLATE)
    allowed_pattern = sam["Parameters"]["ExpiryThresholdDays"]["AllowedPattern"]
    rule = sam["Resources"]["CertificateEventsRule"]["Properties"]
    text = certificate_rule_text(rule).replace("${AWS::AccountId}", "1")
    accepted = []
    for days in [*(str(d) for d in range(400)), "45,30,15,7,3,1", "365,100,10"]:
        if re.fullmatch(allowed_pattern, days):
            accepted.append(days)
            pattern = EventPattern.load(text.replace("${ExpiryThresholdDays}", days))
            last = int(days.split(",")[-1])
            reminder = {
                "source": "aws.acm",
                "account": "1",
                "detail-type": "ACM Certificate Approaching Expiration",
                "detail": {"DaysToExpiry": last},
            }
            assert pattern.matches_event(reminder), days

    assert accepted[0] == "1"
    assert "365" in accepted
    assert "366" not in accepted
    assert len(accepted) == 365 + 2


def test_digest_runs_on_its_schedule_parameter_with_retries_and_a_dead_letter_queue(translated):
    # GIVEN the translated stack WHEN its schedules are read
    schedules = {
        logical_id: r["Properties"]
        for logical_id, r in translated["Resources"].items()
        if r["Type"] == "AWS::Scheduler::Schedule"
    }
    digest = schedules["DigestFunctionDaily"]
    function = translated["Resources"]["DigestFunction"]["Properties"]
    # THEN the digest has its own schedule, parameter and dead letters, like the sweep's
    # (OrgSweepStateMachineDaily: hub mode's sweep, on SweepSchedule, in test_org_sweep_template)
    assert set(schedules) == {
        "SweepFunctionDaily",
        "DigestFunctionDaily",
        "OrgSweepStateMachineDaily",
    }
    assert digest["ScheduleExpression"] == {"Ref": "DigestSchedule"}
    assert translated["Parameters"]["DigestSchedule"]["Default"] == "cron(0 7 * * ? *)"
    assert digest["Target"]["Arn"] == {"Fn::GetAtt": ["DigestFunction", "Arn"]}
    assert {"DeadLetterConfig", "RetryPolicy"} <= set(digest["Target"])
    assert function["Environment"]["Variables"]["DIGEST_TABLE_NAME"] == {"Ref": "DigestTable"}


def test_only_the_workflow_and_the_notify_function_hold_lines_for_the_digest(translated):
    """The notify function may put held#* lines only; the digest function reads and marks."""
    writes = {
        logical_id: statement
        for logical_id, statement in policy_statements(translated)
        if "dynamodb:PutItem" in _actions(statement)
        and statement["Resource"] == {"Fn::GetAtt": ["DigestTable", "Arn"]}
    }
    held_only = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["held#*"]}}

    assert set(writes) == {
        "CertificateLifecycleStateMachineRole",
        "NotifyFunctionRole",
        "DigestFunctionRole",
    }
    assert writes["NotifyFunctionRole"].get("Condition") == held_only


def test_sweep_schedule_name_fits_schedulers_limit_for_any_stack_name(translated):
    """Scheduler names are 1-64 of [0-9a-zA-Z-_.]; a stack name may be 128 characters, so the
    template names no schedule and CloudFormation generates one that fits."""
    schedules = [
        r["Properties"]
        for r in translated["Resources"].values()
        if r["Type"] == "AWS::Scheduler::Schedule"
    ]

    assert schedules
    for schedule in schedules:
        name = schedule.get("Name")
        assert name is None or (isinstance(name, str) and len(name) <= 64), name


def _distribute_kms_statements(
    translated: dict[str, Any], parameters: dict[str, str]
) -> list[dict[str, Any]]:
    """The distribute role's kms statements as CloudFormation resolves them with `parameters`."""
    from certrelay.local.intrinsics import NO_VALUE, resolve

    values = {
        name: str(parameters.get(name, spec.get("Default", "")))
        for name, spec in translated["Parameters"].items()
    }
    pseudo = {"AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}

    def lookup(logical_id: str, attribute: str | None) -> Any:
        if logical_id == "PartnerKmsKeyArns":
            return values[logical_id].split(",")
        return values.get(logical_id) or pseudo.get(logical_id) or f"{logical_id}.{attribute}"

    conditions = {"PartnerKmsKeysGiven": values["PartnerKmsKeyArns"] != "", "IsHub": False}
    role = translated["Resources"]["DistributeFunctionRole"]["Properties"]
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    resolved = resolve(statements, lookup, conditions)
    return [s for s in resolved if s is not NO_VALUE and "kms:GenerateDataKey" in _actions(s)]


def test_partner_keys_in_other_accounts_are_allowed_by_arn_through_s3_only(translated):
    """GIVEN a profile's s3 target names a partner's key in another account WHEN the stack lists
    that key in PartnerKmsKeyArns THEN the distribute role may encrypt with it through S3, and
    with no other key of that account."""
    partner = "arn:aws:kms:eu-west-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab"

    without = _distribute_kms_statements(translated, {})
    with_partner = _distribute_kms_statements(translated, {"PartnerKmsKeyArns": partner})

    own = "arn:aws:kms:eu-west-1:123456789012:key/*"
    assert [s["Resource"] for s in without] == [own]
    assert [s["Resource"] for s in with_partner] == [own, [partner]]
    for statement in with_partner:
        assert statement["Condition"] == {
            "StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}
        }


def test_bundle_access_is_logged_to_a_separate_private_bucket(translated):
    """S3-05: server access logs of the bundle bucket go to a bucket of their own, which only
    S3's log delivery for that bucket may write, without Object Lock."""
    resources = translated["Resources"]
    logging = resources["CertificateBucket"]["Properties"]["LoggingConfiguration"]
    target = logging["DestinationBucketName"]["Ref"]
    log_bucket = resources[target]
    (policy,) = [
        r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": target}
    ]
    (delivery,) = [s for s in policy["Statement"] if s["Effect"] == "Allow"]

    assert target != "CertificateBucket"
    assert log_bucket["Type"] == "AWS::S3::Bucket"
    assert "ObjectLockEnabled" not in log_bucket["Properties"]
    assert set(log_bucket["Properties"]["PublicAccessBlockConfiguration"].values()) == {True}
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::GetAtt": ["CertificateBucket", "Arn"]
    }
    assert log_bucket["DeletionPolicy"] == "Retain"
