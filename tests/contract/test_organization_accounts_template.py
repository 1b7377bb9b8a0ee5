"""OrganizationAccountsRoleArn in template.yaml: a hub of an organisation given that role passes
it to the functions that decide which accounts it serves, lets exactly those assume exactly that
role, and lets them reach the member roles of any account of the organisation; without it the
hub is today's hub (MemberAccountIds only)."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.contract.test_hub_template import HUB, ORG_ID, assume_role_grants, cfn, deployed
from tests.contract.test_template import TEMPLATE

ROLE = "arn:aws:iam::444444444444:role/certrelay-organization-accounts"
READERS = {
    "TriageFunction",
    "ExportFunction",
    "DistributeFunction",
    "InstallCallbackFunction",
    "ApprovalFunction",
    "FindingsFunction",
    "OrgSweepFunction",
}
ENV = "ORGANIZATION_ACCOUNTS_ROLE_ARN"
LAMBDAS = {"AWS::Lambda::Function", "AWS::Serverless::Function"}  # whole_stack translates
__all__ = ["cfn"]  # the whole stack, once per module (a fixture)


def functions(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in resources.items() if r["Type"] in LAMBDAS}


def environment(resource: dict[str, Any]) -> dict[str, Any]:
    return dict(resource["Properties"].get("Environment", {}).get("Variables", {}))


def test_a_hub_given_the_role_may_assume_exactly_that_role_from_the_functions_that_admit(cfn):
    # GIVEN a hub of an organisation with OrganizationAccountsRoleArn
    resources = deployed(
        cfn, {**HUB, "OrganizationId": ORG_ID, "OrganizationAccountsRoleArn": ROLE}
    )
    # THEN exactly one statement lets a function assume that role, on the admitting functions
    grants = [g for g in assume_role_grants(resources) if g[1]["Resource"] == ROLE]
    (_, statement, roles) = grants[0]
    assert len(grants) == 1
    assert statement == {
        "Sid": "AssumeOrganizationAccountsRole",
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Resource": ROLE,
    }
    assert set(roles) == {f"{f}Role" for f in READERS}
    # AND exactly those functions are told the role
    told = {n for n, r in functions(resources).items() if environment(r).get(ENV) == ROLE}
    assert told == READERS
    assert not any(ENV in environment(r) for n, r in functions(resources).items() if n not in told)
    # AND their member-role grants name the organisation, since its accounts are admitted
    member_grants = [g for g in assume_role_grants(resources) if g[1]["Resource"] != ROLE]
    assert len(member_grants) == 3
    for _, member_statement, _ in member_grants:
        assert member_statement["Condition"] == {"StringEquals": {"aws:ResourceOrgID": ORG_ID}}


def test_without_the_role_or_without_an_organisation_nothing_is_granted_or_told(cfn):
    for parameters in ({**HUB, "OrganizationId": ORG_ID}, {"FallbackOwnerEmail": "a@example.com"}):
        resources = deployed(cfn, parameters)
        assert "OrganizationAccountsReadAccess" not in resources
        assert not any(ENV in environment(r) for r in functions(resources).values())
        for _, statement, _ in assume_role_grants(resources):
            assert "aws:ResourceOrgID" not in json.dumps(statement)


def test_the_role_without_an_organization_id_is_refused_at_deploy(cfn):
    (rule,) = cfn["Rules"].values()
    asserted = [json.dumps(a["Assert"]) for a in rule["Assertions"]]
    assert any('"OrganizationAccountsRoleArn"' in a and '"OrganizationId"' in a for a in asserted)
    pattern = cfn["Parameters"]["OrganizationAccountsRoleArn"]["AllowedPattern"]
    assert re.fullmatch(pattern, "")
    assert re.fullmatch(pattern, ROLE)
    assert not re.fullmatch(pattern, "arn:aws:iam::444444444444:user/admin")
    assert cfn["Parameters"]["OrganizationAccountsRoleArn"]["Default"] == ""


def test_a_membership_read_failure_is_reported_never_retried():
    asl = json.loads(
        (TEMPLATE.parent / "statemachines" / "certificate_lifecycle.asl.json").read_text()
    )
    expected = {"Triage Event": "Report Failure", "Export Certificate": "Notify Export Failure"}
    for name, report in expected.items():
        catches = asl["States"][name]["Catch"]
        (rule,) = [c for c in catches if "MembershipUnavailable" in c["ErrorEquals"]]
        assert rule["Next"] == report, name
        assert catches.index(rule) < len(catches) - 1, f"{name}: before States.ALL"
    assert "MembershipUnavailable" not in json.dumps(
        [s.get("Retry") for s in asl["States"].values()]
    )
