"""member.yaml, the organisation StackSet template: deployable, least privilege, hub-aligned.

GIVEN member.yaml (one stack instance per member account and Region) and template.yaml (the
hub), THEN member.yaml lints clean (cfn-lint with the serverless rules; checkov, also run by
`make lint`), every IAM statement holds against the Service Authorization Reference (the check
of test_iam_reference.py), each role the hub assumes trusts only the hub's function roles with
the external id (and the organisation when one is given), the roles grant what the hub's own
roles grant for the same step, the forwarding rules take what the hub's rules take, and the
shape suits StackSets: plain CloudFormation, no nested stack, no local path, IAM names unique
per Region.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.contract.patterns import certificate_rule_text
from tests.contract.test_iam_reference import Resolver, Statement, expand, findings, statements
from tests.contract.test_template import cfn_lint
from tests.templates import read_template

ROOT = Path(__file__).resolve().parents[2]
MEMBER = ROOT / "member.yaml"
HUB = ROOT / "template.yaml"
MAKEFILE = ROOT / "Makefile"
ORGANISATION_DOC = ROOT / "docs" / "organisation.md"
EVENTS = ROOT / "events"

# What a StackSet passes (the IAM check resolves parameters through their defaults).
HUB_ACCOUNT, MEMBER_ACCOUNT, ORGANISATION = "111111111111", "222222222222", "o-a1b2c3d4e5"
EXTERNAL_ID = "certrelay-external-id-0123456789"
HUB_BUS = f"arn:aws:events:us-east-1:{HUB_ACCOUNT}:event-bus/certrelay-hub"
GIVEN = {
    "HubAccountId": HUB_ACCOUNT,
    "HubEventBusArn": HUB_BUS,
    "ExternalId": EXTERNAL_ID,
    "OrganizationId": ORGANISATION,
    # the hub's output MemberServerParameters (optional: MemberServerInstallPolicy)
    "HubCertificateBucketName": "certrelay-certificatebucket-1a2b3c",
    "HubStackName": "certrelay",
    "HubBundleKeyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
    "HubPassphraseKeyId": "5678abcd-12ab-34cd-56ef-1234567890ab",
}
HUB_ASSUMED = {"ReadRole", "ExportRole", "InstallRole"}
# Each role's whole grant: a new action is a decision (and a row of docs/organisation.md).
GRANTS = {
    "ReadRole": {
        "acm:DescribeCertificate",
        "acm:ListTagsForCertificate",
        "acm:ListCertificates",
        "securityhub:BatchImportFindings",
        "securityhub:GetFindings",
        "events:PutEvents",  # the organisation sweep's reminders, on this account's own bus
    },
    "ExportRole": {
        "acm:DescribeCertificate",
        "acm:ListTagsForCertificate",
        "acm:ExportCertificate",
    },
    "InstallRole": {
        "ssm:SendCommand",
        "ssm:ListCommandInvocations",
        "ssm:ListCommands",
        "ssm:CancelCommand",
    },
    "ForwardToHubRole": {"events:PutEvents"},
}


@pytest.fixture(scope="module")
def member() -> dict[str, Any]:
    return read_template(MEMBER)


@pytest.fixture(scope="module")
def hub() -> dict[str, Any]:
    return read_template(HUB)


def resources_of(cfn: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in cfn["Resources"].items() if r["Type"] == kind}


def with_parameters(cfn: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """The template with `values` as its parameters' defaults (what the Resolver reads)."""
    given = copy.deepcopy(cfn)
    for name, value in values.items():
        given["Parameters"][name]["Default"] = value
    return given


def choose(node: Any, truth: dict[str, bool]) -> Any:
    """`node` with each Fn::If decided by `truth` and AWS::NoValue dropped."""
    if isinstance(node, list):
        return [v for v in (choose(i, truth) for i in node) if v != {"Ref": "AWS::NoValue"}]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Fn::If"}:
        condition, yes, no = node["Fn::If"]
        return choose(yes if truth[condition] else no, truth)
    chosen = {key: choose(value, truth) for key, value in node.items()}
    return {k: v for k, v in chosen.items() if v != {"Ref": "AWS::NoValue"}}


def policy_statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in resource["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def actions_of(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def hub_statement(hub: dict[str, Any], function: str, sid: str) -> dict[str, Any]:
    policies = hub["Resources"][function]["Properties"]["Policies"]
    (found,) = [s for p in policies for s in p["Statement"] if s.get("Sid") == sid]
    return found


# --- static gates ------------------------------------------------------------------------------


def test_cfn_lint_is_clean_with_the_serverless_rules():
    result = cfn_lint(str(MEMBER), "-a", "cfn_lint_serverless.rules")

    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_is_clean_with_the_projects_settings():
    """The Makefile's checkov: its venv, its offline environment, .checkov.yaml's skips."""
    beside = ROOT / ".venv-checkov" / "bin" / "checkov"
    executable = str(beside) if beside.exists() else shutil.which("checkov")
    assert executable, "checkov is not installed: `make lint` installs it in .venv-checkov"
    (line,) = re.findall(r"^CHECKOV_ENV := (.+)$", MAKEFILE.read_text(encoding="utf-8"), re.M)
    environment = dict(item.split("=", 1) for item in line.split())
    command = [executable, "-f", str(MEMBER), "--config-file", str(ROOT / ".checkov.yaml")]

    result = subprocess.run(
        [*command, "--quiet", "--compact", "--skip-download", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
        env={**os.environ, **environment},
    )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = json.loads(result.stdout)["summary"]
    assert summary["failed"] == 0
    assert summary["passed"] > 20, "checkov read the template's resources"


def test_make_lint_runs_cfn_lint_and_checkov_on_the_member_template():
    """`make -n` prints the recipe without running it (outside `make test`'s own flags)."""
    inherited = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", "lint"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k not in inherited},
    )
    lines = result.stdout.splitlines()

    (lint,) = [line for line in lines if "bin/cfn-lint " in line]
    (checkov,) = [line for line in lines if "checkov/bin/checkov " in line]
    assert "member.yaml" in lint.split()
    assert "-f member.yaml" in checkov


# --- IAM against the reference; no wildcard action ---------------------------------------------


def trust_statements(cfn: dict[str, Any]) -> list[Statement]:
    """Every role's trust policy, both sides of its conditions, as resource-based statements."""
    found = []
    for name, role in resources_of(cfn, "AWS::IAM::Role").items():
        for truth in (True, False):
            document = choose(role["Properties"]["AssumeRolePolicyDocument"], _truth(cfn, truth))
            for index, body in enumerate(document["Statement"]):
                found.append(Statement(name, str(body.get("Sid", f"#{index}")), body, False))
    return found


def _truth(cfn: dict[str, Any], value: bool) -> dict[str, bool]:
    return dict.fromkeys(cfn.get("Conditions", {}), value)


def test_every_statement_holds_against_the_service_authorization_reference(member):
    cfn = with_parameters(member, GIVEN)
    resolver = Resolver(cfn)
    checked = [*statements(cfn, resolver), *trust_statements(cfn)]

    problems = [p for statement in checked for p in findings(statement, resolver)]

    owners = {s.owner for s in checked}
    assert {*GRANTS, "ForwardDeadLetterQueuePolicy"} <= owners
    assert not problems, "\n".join(problems)


def test_every_allow_names_exact_actions_and_no_policy_names_every_action(member):
    cfn = with_parameters(member, GIVEN)
    every = [*statements(cfn, Resolver(cfn)), *trust_statements(cfn)]

    for statement in every:
        where = f"{statement.owner}/{statement.sid}"
        for action in actions_of(statement.body):
            assert action != "*", where
            if statement.body["Effect"] == "Allow":
                assert "*" not in action, f"{where}: {action} (name the actions)"


def test_each_role_grants_exactly_its_steps_actions(member):
    roles = resources_of(member, "AWS::IAM::Role")

    assert set(roles) == set(GRANTS)
    for name, role in roles.items():
        granted = {
            action
            for statement in policy_statements(role)
            if statement["Effect"] == "Allow"
            for raw in actions_of(statement)
            for action in expand(raw)
        }
        assert {a.lower() for a in granted} == {a.lower() for a in GRANTS[name]}, name


# --- who may assume the roles -----------------------------------------------------------------


def trust_problems(statement: dict[str, Any], cfn: dict[str, Any], organisation: bool) -> list[str]:
    """What a hub-assumed role's trust statement gets wrong; empty when only the hub's function
    roles, with the external id (and in the organisation, when one is given), can assume it."""
    resolver = Resolver(with_parameters(cfn, GIVEN))
    problems = []
    principal = statement.get("Principal", {})
    if statement.get("Effect") != "Allow" or statement.get("Action") != "sts:AssumeRole":
        problems.append("not one Allow of sts:AssumeRole")
    if resolver.values(principal.get("AWS", [])) != [f"arn:aws:iam::{HUB_ACCOUNT}:root"]:
        problems.append(f"principal is not the hub account: {principal}")
    if set(principal) != {"AWS"}:
        problems.append(f"principals other than the hub account: {sorted(principal)}")
    condition = statement.get("Condition", {})
    equals = condition.get("StringEquals", {})
    if equals.get("sts:ExternalId") != {"Ref": "ExternalId"}:
        problems.append("no sts:ExternalId equal to the ExternalId parameter")
    expected_org = {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}} if organisation else {}
    if {k: v for k, v in equals.items() if k != "sts:ExternalId"} != expected_org:
        problems.append(f"organisation condition {equals} (organisation given: {organisation})")
    arns = resolver.values(condition.get("ArnLike", {}).get("aws:PrincipalArn", []))
    if arns != [f"arn:aws:iam::{HUB_ACCOUNT}:role/certrelay-*"]:
        problems.append(f"aws:PrincipalArn is not the hub's function role names: {arns}")
    if set(condition) - {"StringEquals", "ArnLike"}:
        problems.append(f"unexpected condition operators {sorted(condition)}")
    return problems


@pytest.mark.parametrize("organisation", [True, False])
def test_only_the_hubs_function_roles_with_the_external_id_can_assume_a_member_role(
    member, organisation
):
    """GIVEN the organisation id given or left empty WHEN each role's trust policy is decided
    THEN the hub-assumed roles trust the hub account's certrelay roles, with the external id
    (and aws:PrincipalOrgID exactly when an organisation is given); the one other role trusts
    EventBridge in this account."""
    truth = {"InAnOrganisation": organisation}

    for name, role in resources_of(member, "AWS::IAM::Role").items():
        (statement,) = choose(role["Properties"]["AssumeRolePolicyDocument"], truth)["Statement"]
        if name in HUB_ASSUMED:
            assert trust_problems(statement, member, organisation) == [], name
        else:
            assert statement["Principal"] == {"Service": "events.amazonaws.com"}, name
            assert statement["Condition"] == {
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
            }, name


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s["Condition"]["StringEquals"].pop("sts:ExternalId"), "sts:ExternalId"),
        (lambda s: s["Principal"].update(AWS="*"), "not the hub account"),
        (lambda s: s["Principal"].update(Service="lambda.amazonaws.com"), "other than the hub"),
        (lambda s: s["Condition"].pop("ArnLike"), "aws:PrincipalArn"),
        (
            lambda s: s["Condition"]["ArnLike"].update(
                {
                    "aws:PrincipalArn": {
                        "Fn::Sub": "arn:${AWS::Partition}:iam::${HubAccountId}:role/*"
                    }
                }
            ),
            "aws:PrincipalArn",
        ),
        (lambda s: s["Condition"]["StringEquals"].pop("aws:PrincipalOrgID"), "organisation"),
        (lambda s: s.update(Action="sts:*"), "sts:AssumeRole"),
    ],
)
def test_the_trust_check_refuses_a_looser_trust(member, change, expected):
    """The check itself can fail: each loosening of the read role's trust is named."""
    document = member["Resources"]["ReadRole"]["Properties"]["AssumeRolePolicyDocument"]
    (statement,) = copy.deepcopy(choose(document, {"InAnOrganisation": True}))["Statement"]
    change(statement)

    problems = trust_problems(statement, member, organisation=True)

    assert any(expected in p for p in problems), problems


def test_the_external_id_is_hidden_and_long(member):
    spec = member["Parameters"]["ExternalId"]

    assert spec["NoEcho"] is True
    assert int(spec["MinLength"]) >= 16
    assert "Default" not in spec, "every StackSet must choose its own external id"


# --- the same grants as the hub's own roles for the same step ---------------------------------


def test_export_is_limited_to_certificates_tagged_for_a_profile_as_in_the_hub(member, hub):
    (export,) = [
        s
        for s in policy_statements(member["Resources"]["ExportRole"])
        if "acm:ExportCertificate" in actions_of(s)
    ]
    hubs = hub_statement(hub, "ExportFunction", "ExportOnlyCertificatesTaggedForAProfile")

    # the member role acts in its own account and Region: the hub's single-Region form
    assert export == choose(hubs, {"IsHub": False})
    assert export["Condition"] == {"StringLike": {"aws:ResourceTag/certrelay:profile": "?*"}}


def test_send_command_reaches_only_the_document_and_tagged_servers_as_in_the_hub(member, hub):
    """The hub's SendCommand split: the document unconditionally, instances and managed
    instances only with the certrelay:profile tag; following a command on "*"."""
    mine = {s["Sid"]: s for s in policy_statements(member["Resources"]["InstallRole"])}

    for sid in ("SendOnlyToServersTaggedForAProfile", "FollowTheInstallCommand"):
        assert mine[sid] == hub_statement(hub, "DistributeFunction", sid), sid
    document = mine["SendTheInstallDocument"]
    hubs = hub_statement(hub, "DistributeFunction", "SendTheInstallDocument")
    assert {k: v for k, v in document.items() if k != "Resource"} == {
        k: v for k, v in hubs.items() if k != "Resource"
    }
    assert document["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}"
        ":document/${InstallDocument}"
    }
    assert "Condition" not in document


def test_findings_are_imported_into_the_members_own_account(member):
    """Security Hub takes a finding under the default product ARN only from its own account."""
    (imports,) = [
        s
        for s in policy_statements(member["Resources"]["ReadRole"])
        if "securityhub:BatchImportFindings" in actions_of(s)
    ]

    assert imports["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}"
        ":product/${AWS::AccountId}/default"
    }


def test_the_forwarding_role_may_put_events_on_the_hubs_bus_only(member):
    (statement,) = policy_statements(member["Resources"]["ForwardToHubRole"])

    assert statement["Action"] == "events:PutEvents"
    assert statement["Resource"] == {"Ref": "HubEventBusArn"}
    assert "Condition" not in statement


# --- the forwarding rules take what the hub's rules take --------------------------------------


def hub_certificate_pattern(hub: dict[str, Any], account: str) -> dict[str, Any]:
    text = certificate_rule_text(hub["Resources"]["CertificateEventsRule"]["Properties"])
    threshold = hub["Parameters"]["ExpiryThresholdDays"]["Default"]
    return json.loads(
        text.replace("${AWS::AccountId}", account).replace("${ExpiryThresholdDays}", threshold)
    )


def member_certificate_pattern(member: dict[str, Any], account: str) -> dict[str, Any]:
    rule = member["Resources"]["CertificateEventsForwardRule"]["Properties"]
    return json.loads(rule["EventPattern"]["Fn::Sub"].replace("${AWS::AccountId}", account))


def test_the_forward_rule_takes_the_acm_event_kinds_of_the_hubs_rule(member, hub):
    """The member's pattern is the hub's, reduced to this account's events: every detail-type
    the hub takes from aws.acm, in the hub's order, and the organisation sweep's reminders (put
    here through ReadRole); the hub's rule filters Approaching Expiration to its threshold days."""
    hubs = hub_certificate_pattern(hub, MEMBER_ACCOUNT)
    kinds = [
        kind
        for branch in hubs["$or"]
        if "aws.acm" in branch["source"]
        for kind in branch["detail-type"]
    ]

    assert member_certificate_pattern(member, MEMBER_ACCOUNT) == {
        "account": [MEMBER_ACCOUNT],
        "$or": [
            {"source": ["aws.acm"], "detail-type": kinds},
            {
                "source": ["certrelay.sweep"],
                "detail-type": ["ACM Certificate Approaching Expiration"],
            },
        ],
    }


def _fixtures() -> list[dict[str, Any]]:
    events = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(EVENTS.glob("*.json"))]
    reminders = [
        {**e, "detail": {**e["detail"], "DaysToExpiry": days}}
        for e in events
        if e["detail-type"] == "ACM Certificate Approaching Expiration"
        for days in range(0, 61)
    ]
    return events + reminders


def test_every_event_the_hub_would_take_in_a_member_account_is_forwarded(member, hub):
    """GIVEN the sample ACM events (and a reminder for each day 0-60) in a member account WHEN
    matched THEN the member forwards every one the hub's rule takes there, and the sweep's
    reminders, and nothing from another account, from another source, or of a kind the hub
    does not take."""
    from moto.events.models import EventPattern

    hubs = EventPattern.load(json.dumps(hub_certificate_pattern(hub, MEMBER_ACCOUNT)))
    forward = EventPattern.load(json.dumps(member_certificate_pattern(member, MEMBER_ACCOUNT)))
    events = [{**e, "account": MEMBER_ACCOUNT} for e in _fixtures()]

    taken = [e for e in events if hubs.matches_event(e)]
    assert len(taken) > 8
    assert all(forward.matches_event(e) for e in taken)
    for event in events:
        assert not forward.matches_event({**event, "account": "999999999999"})
        reminder = {**event, "source": "certrelay.sweep"}
        is_reminder = event["detail-type"] == "ACM Certificate Approaching Expiration"
        assert forward.matches_event(reminder) == is_reminder, "the sweep sends reminders only"
        assert not forward.matches_event({**event, "source": "certrelay.other"})
        assert not forward.matches_event({**event, "detail-type": "ACM Certificate Exported"})


def test_the_install_status_rule_is_the_hubs_for_this_accounts_document(member, hub):
    hubs = hub["Resources"]["InstallCallbackFunction"]["Properties"]["Events"]
    hub_pattern = copy.deepcopy(hubs["InstallCommandFinished"]["Properties"]["Pattern"])
    rule = member["Resources"]["InstallStatusForwardRule"]["Properties"]
    pattern = copy.deepcopy(rule["EventPattern"])

    assert pattern["detail"].pop("document-name") == [{"Ref": "InstallDocument"}]
    hub_pattern["detail"].pop("document-name")
    assert pattern == hub_pattern


def test_both_rules_forward_to_the_hubs_bus_with_a_role_retries_and_a_dead_letter_queue(member):
    rules = resources_of(member, "AWS::Events::Rule")
    queues = resources_of(member, "AWS::SQS::Queue")
    (policy,) = resources_of(member, "AWS::SQS::QueuePolicy").values()

    assert set(rules) == {"CertificateEventsForwardRule", "InstallStatusForwardRule"}
    for name, rule in rules.items():
        (target,) = rule["Properties"]["Targets"]
        assert rule["Properties"]["EventBusName"] == "default", name
        assert target["Arn"] == {"Ref": "HubEventBusArn"}, name
        assert target["RoleArn"] == {"Fn::GetAtt": ["ForwardToHubRole", "Arn"]}, name
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0, name
        (queue,) = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][:1]
        assert queues[queue]["Properties"]["SqsManagedSseEnabled"] is True, name
    allow, deny = policy["Properties"]["PolicyDocument"]["Statement"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Condition"]["ArnEquals"]["aws:SourceArn"] == [
        {"Fn::GetAtt": [name, "Arn"]} for name in rules
    ]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# --- a good StackSets citizen ----------------------------------------------------------------


def _walk(node: Any) -> list[Any]:
    found = [node]
    if isinstance(node, dict):
        for key, value in node.items():
            found += [key, *_walk(value)]
    elif isinstance(node, list):
        for item in node:
            found += _walk(item)
    return found


def test_the_member_template_is_plain_cloudformation_with_nothing_outside_it(member):
    """A StackSet deploys one template body to every instance: no transform (no SAM, no
    AWS::Include), no nested stack, no local file for `package` to upload."""
    kinds = {r["Type"] for r in member["Resources"].values()}
    keys = {item for item in _walk(member) if isinstance(item, str)}

    assert "Transform" not in member
    assert "Fn::Transform" not in keys
    assert not {k for k in kinds if k.startswith("AWS::Serverless::")}
    assert "AWS::CloudFormation::Stack" not in kinds
    assert not keys & {"CodeUri", "DefinitionUri", "TemplateURL", "Location", "ContentUri"}
    assert all("Export" not in output for output in member["Outputs"].values())


def test_names_are_unique_per_account_and_region_and_fit_iam(member):
    """IAM is global: two Regions' stack instances in one account need two role names."""
    roles = resources_of(member, "AWS::IAM::Role")
    named = {
        n: r["Properties"]["RoleName"]["Fn::Sub"]
        for n, r in roles.items()
        if "RoleName" in r["Properties"]
    }
    longest = {"NamePrefix": "x" * 30, "AWS::Region": "ap-southeast-7"}

    assert set(named) == HUB_ASSUMED
    for name, text in named.items():
        assert "${AWS::Region}" in text, name
        resolved = re.sub(r"\$\{([^}]+)\}", lambda m: longest[m.group(1)], text)
        assert len(resolved) <= 64, name
    assert re.fullmatch(member["Parameters"]["NamePrefix"]["AllowedPattern"], "x" * 30)
    assert not re.fullmatch(member["Parameters"]["NamePrefix"]["AllowedPattern"], "x" * 31)


def test_no_account_or_region_is_written_into_the_template():
    text = MEMBER.read_text(encoding="utf-8")

    assert not re.findall(r"(?<![\d{])\d{12}(?!\d)", text)
    assert not re.findall(r"\b(?:us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d\b", text)


TEMPLATE_BODY_MAX, TEMPLATE_URL_MAX = 51_200, 460_800  # CreateStackSet's limits, in bytes


def test_the_documented_commands_pass_the_template_the_way_its_size_allows():
    """Over 51,200 bytes CloudFormation refuses a template body: the page's commands upload it."""
    size = MEMBER.stat().st_size
    text = ORGANISATION_DOC.read_text(encoding="utf-8")
    commands = "\n".join(re.findall(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL))

    assert size <= TEMPLATE_URL_MAX
    assert commands.count("create-stack-set") >= 2
    if size > TEMPLATE_BODY_MAX:
        assert "--template-body" not in commands
        assert commands.count("--template-url https://") == commands.count("create-stack-set ")


def test_a_stackset_supplies_only_the_hubs_coordinates_and_the_external_id(member):
    required = {n for n, spec in member["Parameters"].items() if "Default" not in spec}

    assert required == {"HubAccountId", "HubEventBusArn", "ExternalId"}
    for name, value in GIVEN.items():
        pattern = member["Parameters"][name].get("AllowedPattern")
        assert pattern is None or re.fullmatch(pattern, value), name


# --- the organisation page says what each role may do -----------------------------------------


def test_the_organisation_page_lists_every_roles_actions(member):
    text = ORGANISATION_DOC.read_text(encoding="utf-8")
    rows = {
        found[1]: found[0] for found in re.finditer(r"^\| `(\w+Role)`.*$", text, flags=re.MULTILINE)
    }

    assert set(rows) == set(GRANTS)
    for name, row in rows.items():
        named = set(re.findall(r"`([a-z0-9-]+:[A-Z]\w+)`", row))
        assert named == GRANTS[name], name


# --- servers in this account: what they read in the hub ---------------------------------------

HUB_BUNDLE_KEY = f"arn:aws:kms:us-east-1:{HUB_ACCOUNT}:key/{GIVEN['HubBundleKeyId']}"
HUB_PASSPHRASE_KEY = f"arn:aws:kms:us-east-1:{HUB_ACCOUNT}:key/{GIVEN['HubPassphraseKeyId']}"
PROFILE_OF_ROLE = "${aws:PrincipalTag/certrelay:profile}"
MEMBER_SERVER_POLICY = [
    {
        "Sid": "FetchOwnProfilesBundles",
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:GetObjectVersion"],
        "Resource": [f"arn:aws:s3:::{GIVEN['HubCertificateBucketName']}/certificates/*"],
        "Condition": {
            "StringEquals": {
                "s3:ExistingObjectTag/certrelay:profile": [PROFILE_OF_ROLE],
                "aws:ResourceAccount": [HUB_ACCOUNT],
            }
        },
    },
    {
        "Sid": "ReadOwnProfilesPassphrases",
        "Effect": "Allow",
        "Action": ["secretsmanager:GetSecretValue"],
        "Resource": [f"arn:aws:secretsmanager:us-east-1:{HUB_ACCOUNT}:secret:certrelay/export/*"],
        "Condition": {
            "StringEquals": {"secretsmanager:ResourceTag/certrelay:profile": [PROFILE_OF_ROLE]}
        },
    },
    {
        "Sid": "DecryptBundlesThroughS3",
        "Effect": "Allow",
        "Action": ["kms:Decrypt"],
        "Resource": [HUB_BUNDLE_KEY],
        "Condition": {"StringEquals": {"kms:ViaService": ["s3.us-east-1.amazonaws.com"]}},
    },
    {
        "Sid": "DecryptPassphrasesThroughSecretsManager",
        "Effect": "Allow",
        "Action": ["kms:Decrypt"],
        "Resource": [HUB_PASSPHRASE_KEY],
        "Condition": {
            "StringEquals": {"kms:ViaService": ["secretsmanager.us-east-1.amazonaws.com"]}
        },
    },
]


def resolved(node: Any, resolver: Resolver) -> Any:
    """`node` with every intrinsic resolved to the list of values it takes."""
    if isinstance(node, list):
        return [v for item in node for v in _as_list(resolved(item, resolver))]
    if isinstance(node, dict):
        if len(node) == 1 and next(iter(node)).startswith(("Fn::", "Ref")):
            return resolver.values(node)
        return {key: resolved(value, resolver) for key, value in node.items()}
    return node


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_member_servers_read_only_their_profiles_bundles_and_passphrases_in_the_hub(member):
    """GIVEN the hub's MemberServerParameters WHEN member.yaml's server policy is resolved THEN
    it is exactly the hub's ServerInstallPolicy pointed at the hub: its bucket (owned by the hub
    account), its <stack>/export/* secrets in the hub's Region, its two keys through S3 and
    Secrets Manager only, and only the objects and secrets of the role's own profile tag."""
    cfn = with_parameters(member, GIVEN)
    resolver = Resolver(cfn)
    policy = cfn["Resources"]["MemberServerInstallPolicy"]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]

    got = [
        {
            k: _as_list(resolved(v, resolver))
            if k in ("Action", "Resource")
            else resolved(v, resolver)
            for k, v in statement.items()
        }
        for statement in statements
    ]
    for statement in got:
        for operator in statement["Condition"].values():
            for key, value in operator.items():
                operator[key] = _as_list(value)

    assert got == MEMBER_SERVER_POLICY
    assert policy["Condition"] == "ServesServers"


def test_member_server_policy_grants_what_the_hubs_server_policy_grants(member, hub):
    """The member's server policy has the hub's ServerInstallPolicy's statements, actions and
    condition keys: the install document needs the same on either side."""
    hub_statements = hub["Resources"]["ServerInstallPolicy"]["Properties"]["PolicyDocument"]
    member_statements = member["Resources"]["MemberServerInstallPolicy"]["Properties"]
    shape = [
        (
            s["Sid"],
            sorted(actions_of(s)),
            {
                op: sorted(set(keys) - {"aws:ResourceAccount"})
                for op, keys in s["Condition"].items()
            },
        )
        for s in hub_statements["Statement"]
    ]
    assert shape == [
        (
            s["Sid"],
            sorted(actions_of(s)),
            {
                op: sorted(set(keys) - {"aws:ResourceAccount"})
                for op, keys in s["Condition"].items()
            },
        )
        for s in member_statements["PolicyDocument"]["Statement"]
    ]


def test_without_the_hubs_bucket_no_server_policy_is_created_and_a_partial_set_is_refused(member):
    condition = member["Conditions"]["ServesServers"]
    rule = member["Rules"]["HubServerSideComplete"]
    outputs = member["Outputs"]["MemberServerInstallPolicyArn"]

    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": "HubCertificateBucketName"}, ""]}]}
    assert rule["RuleCondition"] == condition
    (assertion,) = rule["Assertions"]
    named = {item for item in _walk(assertion["Assert"]) if isinstance(item, str)}
    assert {"HubStackName", "HubBundleKeyId", "HubPassphraseKeyId"} <= named
    assert outputs["Condition"] == "ServesServers"
    for name in (
        "HubCertificateBucketName",
        "HubStackName",
        "HubBundleKeyId",
        "HubPassphraseKeyId",
    ):
        assert member["Parameters"][name]["Default"] == ""


def test_the_hub_lists_the_server_parameters_a_member_passes(member, hub):
    output = hub["Outputs"]["MemberServerParameters"]
    (text,) = [output["Value"]["Fn::Sub"]]
    passed = dict(pair.split("=", 1) for pair in text.split())

    assert output["Condition"] == "IsHub"
    assert set(passed) == {n for n in member["Parameters"] if n.startswith("Hub")} - {
        "HubAccountId",
        "HubEventBusArn",
        "HubRoleNamePrefix",
    }
    assert passed == {
        "HubCertificateBucketName": "${CertificateBucket}",
        "HubStackName": "${AWS::StackName}",
        "HubBundleKeyId": "${BundleKey}",
        "HubPassphraseKeyId": "${PassphraseKey}",
    }


@pytest.mark.parametrize("topic_given", [True, False])
def test_a_refused_forward_waits_in_the_members_queue_and_its_alarm_says_so(
    member: dict[str, Any], topic_given: bool
) -> None:
    """GIVEN member.yaml WHEN the hub's bus does not take a forwarded event (a bus policy
    refusing the account) THEN it waits in ForwardDeadLetterQueue, whose depth alarm notifies
    AlarmTopicArn when given and still exists, without action, when not."""
    (alarm,) = resources_of(member, "AWS::CloudWatch::Alarm").values()
    properties = choose(alarm["Properties"], {"AlarmTopicGiven": topic_given})
    assert (properties["Namespace"], properties["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert properties["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["ForwardDeadLetterQueue", "QueueName"]}}
    ]
    assert (properties["Threshold"], properties["ComparisonOperator"]) == (
        0,
        "GreaterThanThreshold",
    )
    expected = [{"Ref": "AlarmTopicArn"}] if topic_given else None
    assert properties.get("AlarmActions") == expected
    assert properties.get("OKActions") == expected
    for rule in resources_of(member, "AWS::Events::Rule").values():
        for target in rule["Properties"]["Targets"]:
            assert target["DeadLetterConfig"]["Arn"] == {
                "Fn::GetAtt": ["ForwardDeadLetterQueue", "Arn"]
            }
