"""The organisation sweep on the template and in its ASL: hub mode only, least privilege, and a
Distributed Map whose children report their own failures.

The local engine runs this ASL (tests/statemachine/test_org_sweep.py); what moto does not check
(IAM, conditions, the map's failure threshold) is checked here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from certrelay import errors
from tests.contract.test_template import _actions, policy_statements

ROOT = Path(__file__).resolve().parents[2]
ASL = json.loads((ROOT / "statemachines" / "org_sweep.asl.json").read_text(encoding="utf-8"))
MEMBER_READ_ROLES = {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${MemberRoleNamePrefix}-read-*"}
TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "ServiceThrottled",
}


def states(block: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state by name, the Distributed Map's children included."""
    found: dict[str, dict[str, Any]] = {}
    for name, state in block["States"].items():
        found[name] = state
        if "ItemProcessor" in state:
            found.update(states(state["ItemProcessor"]))
    return found


STATES = states(ASL)


def test_every_org_sweep_resource_exists_only_in_hub_mode(translated):
    resources = translated["Resources"]
    org_sweep = {k: r for k, r in resources.items() if k.startswith("OrgSweep")}

    assert {
        "OrgSweepFunction",
        "OrgSweepFunctionRole",
        "OrgSweepStateMachine",
        "OrgSweepStateMachineRole",
        "OrgSweepStateMachineDaily",  # the schedule SAM makes from the Events entry
    } <= set(org_sweep)
    for logical_id, resource in org_sweep.items():
        expected = "OrgSweepDeployed" if resource["Type"] == "AWS::CloudWatch::Alarm" else "IsHub"
        assert resource.get("Condition") == expected, logical_id
    assert translated["Conditions"]["IsHub"] == {"Fn::Equals": [{"Ref": "OrganizationMode"}, "hub"]}
    assert translated["Parameters"]["OrganizationMode"]["Default"] == "single"


def test_the_schedule_starts_the_org_sweep_in_hub_mode_and_the_sweep_function_otherwise(
    translated,
):
    resources = translated["Resources"]
    org = resources["OrgSweepStateMachineDaily"]["Properties"]
    single = resources["SweepFunctionDaily"]["Properties"]

    assert org["ScheduleExpression"] == single["ScheduleExpression"] == {"Ref": "SweepSchedule"}
    assert org["Target"]["Arn"] == {"Ref": "OrgSweepStateMachine"}
    assert {"DeadLetterConfig", "RetryPolicy"} <= set(org["Target"])
    assert single["Target"]["Arn"] == {"Fn::GetAtt": ["SweepFunction", "Arn"]}
    assert single["State"] == {"Fn::If": ["IsHub", "DISABLED", "ENABLED"]}


def test_of_the_org_sweep_only_its_function_assumes_roles_member_read_roles_only(translated):
    resources = translated["Resources"]
    grants = [
        (logical_id, statement)
        for logical_id, statement in policy_statements(translated)
        if statement.get("Effect") == "Allow"
        and any(a.lower().startswith("sts:") for a in _actions(statement))
    ]
    holders = {  # the roles each grant reaches (an AWS::IAM::Policy names them)
        logical_id: [r["Ref"] for r in resources[logical_id].get("Properties", {}).get("Roles", [])]
        or [logical_id]
        for logical_id, _ in grants
    }
    sweeps = [s for k, s in grants if any(r.startswith("OrgSweep") for r in holders[k])]
    # Reading the organisation's accounts (OrganizationAccountsRoleArn, when given): that role
    # only (tests/contract/test_organization_accounts_template.py).
    membership = [s for s in sweeps if s["Resource"] == {"Ref": "OrganizationAccountsRoleArn"}]

    (statement,) = [s for s in sweeps if s not in membership]
    assert len(membership) == 1
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Resource"] == MEMBER_READ_ROLES
    assert statement["Condition"] == {
        "Fn::If": [
            "ReadsOrganizationAccounts",
            {"StringEquals": {"aws:ResourceOrgID": {"Ref": "OrganizationId"}}},
            {"StringEquals": {"aws:ResourceAccount": {"Ref": "MemberAccountIds"}}},
        ]
    }
    assert not [k for k, _ in grants if k.startswith("OrgSweepStateMachine")]


def test_the_org_sweep_function_may_list_and_remind_nothing_more(translated):
    statements = [s for k, s in policy_statements(translated) if k == "OrgSweepFunctionRole"]
    actions = {a for s in statements for a in _actions(s)}

    assert actions == {  # sts:AssumeRole comes from MemberReadRoleAccess (above)
        "acm:ListCertificates",  # the hub's own pairs
        "events:PutEvents",
        "sns:Publish",
        "kms:GenerateDataKey*",
        "kms:Decrypt",
    }
    (put,) = [s for s in statements if "events:PutEvents" in _actions(s)]
    assert put["Condition"] == {"StringEquals": {"events:source": "certrelay.sweep"}}
    assert put["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:events:*:${AWS::AccountId}:event-bus/default"
    }
    (publish,) = [s for s in statements if "sns:Publish" in _actions(s)]
    assert publish["Resource"] == {"Ref": "OpsTopic"}


def test_the_org_sweep_state_machine_invokes_its_function_and_runs_its_own_children(translated):
    statements = [s for k, s in policy_statements(translated) if k == "OrgSweepStateMachineRole"]
    by_action = {a: s["Resource"] for s in statements for a in _actions(s)}

    assert by_action["lambda:InvokeFunction"] == {"Fn::GetAtt": ["OrgSweepFunction", "Arn"]}
    own = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
    assert by_action["states:StartExecution"] == {
        "Fn::Sub": f"{own}:stateMachine:${{AWS::StackName}}-org-sweep"
    }
    for action in ("states:DescribeExecution", "states:StopExecution"):
        assert by_action[action] == {"Fn::Sub": f"{own}:execution:${{AWS::StackName}}-org-sweep/*"}
    assert not [a for a in by_action if a.startswith(("sts:", "acm:", "events:"))]
    machine = translated["Resources"]["OrgSweepStateMachine"]["Properties"]
    assert machine["StateMachineName"] == {"Fn::Sub": "${AWS::StackName}-org-sweep"}


def test_the_substitutions_are_exactly_the_placeholders(translated):
    text = (ROOT / "statemachines" / "org_sweep.asl.json").read_text(encoding="utf-8")
    machine = translated["Resources"]["OrgSweepStateMachine"]["Properties"]

    assert set(re.findall(r'"\$\{(\w+)\}"', text)) == set(machine["DefinitionSubstitutions"])
    assert not re.findall(
        r"\$\{", text.replace('"${LambdaInvoke}"', "").replace('"${OrgSweepFunctionArn}"', "")
    )


def test_the_map_is_distributed_bounded_and_tolerates_failures_as_a_float():
    (name,) = [n for n, s in ASL["States"].items() if s["Type"] == "Map"]
    fan_out = ASL["States"][name]

    assert fan_out["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "STANDARD",
    }
    assert isinstance(fan_out["MaxConcurrency"], int)
    assert 0 < fan_out["MaxConcurrency"] <= 1000
    assert isinstance(fan_out["ToleratedFailurePercentage"], float), "moto refuses an integer"
    assert "ItemBatcher" not in fan_out, "moto's interpreter cannot parse it"
    assert "ResultWriter" not in fan_out, "moto's drops the results: each child reports instead"
    assert fan_out["ResultPath"] == "$.results"
    assert [c["Next"] for c in fan_out["Catch"]] == ["Summarise Sweep"]


def test_every_childs_failure_becomes_its_own_report_never_the_maps():
    sweep_pair = STATES["Sweep Pair"]
    (catch,) = sweep_pair["Catch"]
    report = STATES[catch["Next"]]

    assert catch["ErrorEquals"] == ["States.ALL"]
    assert catch["ResultPath"] == "$.error"
    assert report["Type"] == "Pass"
    assert report["End"] is True
    assert report["Parameters"] == {
        "account.$": "$.account",
        "region.$": "$.region",
        "error.$": "$.error.Error",
        "cause.$": "$.error.Cause",
    }


def test_only_transient_errors_are_retried_and_every_task_has_a_deadline():
    tasks = {n: s for n, s in STATES.items() if s["Type"] == "Task"}

    assert set(tasks) == {"List Sweep Pairs", "Sweep Pair", "Summarise Sweep"}
    for name, task in tasks.items():
        assert task["TimeoutSeconds"] > 0, name
        (retry,) = task["Retry"]
        assert set(retry["ErrorEquals"]) == TRANSIENT, name
        assert retry["JitterStrategy"] == "FULL"
        assert retry["BackoffRate"] >= 2
        assert task["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
    assert "MemberRoleUnavailable" not in json.dumps([t["Retry"] for t in tasks.values()])
    assert ASL["TimeoutSeconds"] > 0


def test_error_names_are_certrelay_errors_and_every_fail_says_why():
    named = {
        name
        for state in STATES.values()
        for rule in [*state.get("Retry", []), *state.get("Catch", [])]
        for name in rule["ErrorEquals"]
        if not name.startswith(("States.", "Lambda."))
    }
    fails = [s for s in STATES.values() if s["Type"] == "Fail"]

    assert named == {"ServiceThrottled"}
    assert all(isinstance(getattr(errors, name, None), type) for name in named)
    assert issubclass(errors.MemberRoleUnavailable, errors.CertrelayError)
    assert fails
    assert all(f.get("Error") and f.get("Cause") for f in fails)


def test_failed_pairs_do_not_fail_the_sweep_only_an_unfinished_sweep_does():
    choice = ASL["States"]["Sweep Complete?"]

    assert choice["Choices"] == [
        {"Variable": "$.complete", "BooleanEquals": True, "Next": "Sweep Reported"}
    ]
    assert choice["Default"] == "Sweep Incomplete"
    assert ASL["States"]["Sweep Reported"]["Type"] == "Succeed"
