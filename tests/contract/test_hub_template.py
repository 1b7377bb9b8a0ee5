"""Organisation mode in template.yaml: a single stack is today's stack (no bus, no member roles);
a hub gets its own bus, which admits only the organisation or the listed accounts, its rules on
that bus, and sts:AssumeRole on member.yaml's roles of each function's kind only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from certrelay.local.intrinsics import evaluate_condition, resolve
from certrelay.local.nested import whole_stack
from tests.contract.patterns import certificate_rule_text
from tests.contract.test_template import TEMPLATE

HUB_ACCOUNT, REGION = "111111111111", "us-east-1"
MEMBERS = "222222222222,333333333333"
ORG_ID = "o-a1b2c3d4e5"
BASE = {"FallbackOwnerEmail": "security@example.com"}
HUB = {
    **BASE,
    "OrganizationMode": "hub",
    "MemberAccountIds": MEMBERS,
    "MemberRegions": "eu-west-1",
    "MemberExternalId": "hub-external-id-0123456789",
}
ROLE_KINDS = {
    "read": {"TriageFunctionRole", "FindingsFunctionRole", "ApprovalFunctionRole",
             "SweepFunctionRole", "DistributeFunctionRole", "OrgSweepFunctionRole"},
    "export": {"ExportFunctionRole"},
    "install": {"DistributeFunctionRole", "InstallCallbackFunctionRole"},
}  # fmt: skip


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return whole_stack(TEMPLATE, BASE, REGION, inline_definitions=False)


def deployed(cfn: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """The resources CloudFormation would create with these parameters, intrinsics resolved
    (a resource's Ref is its logical id, its Arn `arn:<logical id>`)."""
    declared = cfn["Parameters"]
    values = {name: parameters.get(name, str(p.get("Default", ""))) for name, p in declared.items()}
    pseudo = {"AWS::AccountId": HUB_ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws",
              "AWS::StackName": "certrelay", "AWS::URLSuffix": "amazonaws.com"}  # fmt: skip

    def lookup(name: str, attribute: str | None) -> Any:
        if attribute is not None:
            return f"{attribute.lower()}:{name}"
        if name in pseudo:
            return pseudo[name]
        if name in values:
            if declared[name]["Type"] == "CommaDelimitedList":
                return [item.strip() for item in values[name].split(",")]
            return values[name]
        return name

    conditions: dict[str, bool] = {}
    for name, expression in cfn["Conditions"].items():
        conditions[name] = evaluate_condition(expression, lookup, conditions)
    return {
        name: {
            **resource,
            "Properties": resolve(resource.get("Properties", {}), lookup, conditions),
        }
        for name, resource in cfn["Resources"].items()
        if "Condition" not in resource or conditions[resource["Condition"]]
    }


def of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def assume_role_grants(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any], list[str]]]:
    """(resource, statement, roles) of every statement that allows sts:AssumeRole to a function."""
    found = []
    for name, resource in resources.items():
        properties = resource["Properties"]
        documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
        if resource["Type"] == "AWS::IAM::Policy":
            documents.append(properties["PolicyDocument"])
        for document in documents:
            for statement in document["Statement"]:
                actions = statement.get("Action", [])
                if "sts:AssumeRole" in ([actions] if isinstance(actions, str) else actions):
                    found.append((name, statement, properties.get("Roles", [name])))
    return found


def test_single_mode_creates_no_bus_no_relay_and_no_member_role_grant(cfn):
    # GIVEN the default parameters WHEN the stack is deployed
    resources = deployed(cfn, BASE)
    # THEN there is no bus of its own, no bus policy, no relay and no sts:AssumeRole grant
    assert not of_type(resources, "AWS::Events::EventBus")
    assert not of_type(resources, "AWS::Events::EventBusPolicy")
    assert not any(name.startswith(("Hub", "Member")) for name in resources)
    assert assume_role_grants(resources) == []
    # AND its rules stay on the default bus, the certificate rule for its own account only
    rule = resources["CertificateEventsRule"]["Properties"]
    assert "EventBusName" not in rule
    callback = resources["InstallCallbackFunctionInstallCommandFinished"]["Properties"]
    assert "EventBusName" not in callback
    assert callback["EventPattern"]["detail"]["document-name"] == ["InstallDocument"]
    assert json.loads(rule["EventPattern"].replace("${ExpiryThresholdDays}", "1"))["account"] == [
        HUB_ACCOUNT
    ]


def test_the_single_mode_pattern_is_the_hub_pattern_plus_todays_account_filter(cfn):
    rule = cfn["Resources"]["CertificateEventsRule"]["Properties"]
    single = json.loads(certificate_rule_text(rule).replace("${ExpiryThresholdDays}", "1"))
    hub = json.loads(certificate_rule_text(rule, hub=True).replace("${ExpiryThresholdDays}", "1"))
    assert single.pop("account") == ["${AWS::AccountId}"]
    assert "account" not in hub  # every account reaches triage, which refuses and reports
    assert single == hub


@pytest.mark.parametrize(
    ("extra", "principal", "condition"),
    [
        ({"OrganizationId": ORG_ID}, "*", {"StringEquals": {"aws:PrincipalOrgID": ORG_ID}}),
        ({}, {"AWS": MEMBERS.split(",")}, None),
    ],
    ids=["organisation", "account list"],
)
def test_the_hub_bus_admits_only_the_organisation_or_the_listed_accounts(
    cfn, extra: dict[str, str], principal: Any, condition: Any
):
    # GIVEN a hub, with an organisation id or with an account list only
    resources = deployed(cfn, {**HUB, **extra})
    # THEN it has one bus, named after the stack, and one statement on it
    (bus,) = of_type(resources, "AWS::Events::EventBus").values()
    assert bus["Properties"] == {"Name": "certrelay-hub"}
    (policy,) = of_type(resources, "AWS::Events::EventBusPolicy").values()
    statement = policy["Properties"]["Statement"]
    assert policy["Properties"]["EventBusName"] == "HubEventBus"
    # AND that statement lets only the organisation, or only the listed accounts, put events
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "events:PutEvents"
    assert statement["Resource"] == "arn:HubEventBus"
    assert statement["Principal"] == principal
    assert statement.get("Condition") == condition
    # AND "everyone" never comes without the organisation condition
    if statement["Principal"] == "*":
        assert statement["Condition"]["StringEquals"]["aws:PrincipalOrgID"].startswith("o-")


def test_a_hubs_rules_sit_on_its_bus_and_take_the_members_install_document(cfn):
    resources = deployed(cfn, {**HUB, "MemberRoleNamePrefix": "relay"})
    rule = resources["CertificateEventsRule"]["Properties"]
    assert rule["EventBusName"] == "HubEventBus"
    assert "account" not in json.loads(rule["EventPattern"].replace("${ExpiryThresholdDays}", "1"))
    install = resources["InstallCallbackFunctionInstallCommandFinished"]["Properties"]
    assert install["EventBusName"] == "HubEventBus"
    names = install["EventPattern"]["detail"]["document-name"]
    assert names == ["InstallDocument", "relay-install-certificate"]
    # AND the hub's own account's events are relayed to that bus, its own account only
    relay = resources["HubOwnEventsForwardRule"]["Properties"]
    (target,) = relay["Targets"]
    assert target["Arn"] == "arn:HubEventBus"
    assert json.loads(relay["EventPattern"])["account"] == [HUB_ACCOUNT]
    assert target["RoleArn"] == "arn:HubOwnEventsForwardRole"
    assert cfn["Outputs"]["HubEventBusArn"]["Condition"] == "IsHub"


def test_a_hub_grants_sts_assume_role_on_each_functions_own_kind_of_member_role_only(cfn):
    grants = assume_role_grants(deployed(cfn, {**HUB, "MemberRoleNamePrefix": "relay"}))
    by_kind = {}
    for _, statement, roles in grants:
        assert statement["Effect"] == "Allow"
        assert statement["Action"] == "sts:AssumeRole"
        assert statement["Condition"] == {
            "StringEquals": {"aws:ResourceAccount": MEMBERS.split(",")}
        }
        prefix = "arn:aws:iam::*:role/relay-"
        assert statement["Resource"].startswith(prefix)
        kind = statement["Resource"].removeprefix(prefix).removesuffix("-*")
        by_kind[kind] = set(roles)
    assert by_kind == ROLE_KINDS


def test_hub_mode_asserts_an_external_id_and_someone_to_admit(cfn):
    (rule,) = cfn["Rules"].values()
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "OrganizationMode"}, "hub"]}
    asserted = json.dumps(rule["Assertions"])
    assert '{"Ref": "MemberExternalId"}' in asserted
    assert '{"Ref": "OrganizationId"}' in asserted
    assert '{"Ref": "MemberAccountIds"}' in asserted
    # AND a non-empty external id must be 16+ characters
    import re

    pattern = cfn["Parameters"]["MemberExternalId"]["AllowedPattern"]
    assert re.fullmatch(pattern, "")
    assert not re.fullmatch(pattern, "fifteen-chars-x")
    assert re.fullmatch(pattern, "sixteen-chars-xx")
    assert cfn["Parameters"]["MemberExternalId"]["NoEcho"] is True


def test_the_functions_read_the_organisation_from_globals(cfn):
    resources = deployed(cfn, {**HUB, "OrganizationId": ORG_ID})
    environment = resources["TriageFunction"]["Properties"]["Environment"]["Variables"]
    assert {k: environment[k] for k in environment if k.startswith(("ORGANIZATION", "MEMBER"))} == {
        "ORGANIZATION_MODE": "hub",
        "ORGANIZATION_ID": ORG_ID,
        "MEMBER_ACCOUNT_IDS": MEMBERS,
        "MEMBER_REGIONS": "eu-west-1",
        "MEMBER_ROLE_PREFIX": "certrelay",
        "MEMBER_EXTERNAL_ID": "hub-external-id-0123456789",
    }


def test_a_member_role_or_region_refusal_is_reported_never_retried():
    """Triage and export catch them by name into the paths that report; no Retry lists them."""
    asl = json.loads(
        (TEMPLATE.parent / "statemachines" / "certificate_lifecycle.asl.json").read_text()
    )
    refusals = {"MemberRoleUnavailable", "RegionNotEnabled"}
    expected = {"Triage Event": "Report Failure", "Export Certificate": "Notify Export Failure"}
    for name, report in expected.items():
        catches = asl["States"][name]["Catch"]
        (rule,) = [c for c in catches if refusals <= set(c["ErrorEquals"])]
        assert rule["Next"] == report, name
        assert catches.index(rule) < len(catches) - 1, f"{name}: before States.ALL"
    retried = json.dumps([s.get("Retry", []) for s in asl["States"].values()])
    assert not any(error in retried for error in refusals)


# --- servers in member accounts read the hub's bundles, passphrases and keys ---------------------
# moto enforces none of these policies: they are checked as AWS documents them.
# S3: https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-bucket-policies.html
#   (aws:PrincipalOrgID; s3:ExistingObjectTag/<key>), and a cross-account read needs the bucket
#   policy and the caller's IAM both to allow it.
# KMS: https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html
#   and kms:ViaService (conditions-kms.html#conditions-kms-via-service).
# Secrets Manager's side is each secret's resource policy (tests/unit/test_passphrase_policy.py).
SERVER_POLICIES = ("CertificateBucketPolicy", "BundleKey", "PassphraseKey")
SECRETS = "arn:aws:secretsmanager:us-east-1:111111111111:secret:certrelay/export/*"


def policy_document(resource: dict[str, Any]) -> dict[str, Any]:
    properties = resource["Properties"]
    document: dict[str, Any] = properties.get("KeyPolicy") or properties["PolicyDocument"]
    return document


def cross_account_allows(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Sid -> every Allow of the bucket and key policies whose principal is not the hub's own."""
    found = {}
    for name in SERVER_POLICIES:
        for statement in policy_document(resources[name])["Statement"]:
            own = {"AWS": f"arn:aws:iam::{HUB_ACCOUNT}:root"}
            if statement["Effect"] == "Allow" and statement["Principal"] not in (own,):
                if "Service" in statement["Principal"]:
                    continue
                found[statement["Sid"]] = statement
    return found


def test_single_mode_lets_no_other_account_read_bundles_or_decrypt(cfn):
    # GIVEN the default parameters WHEN the stack is deployed
    resources = deployed(cfn, BASE)
    # THEN the bucket and key policies allow only the stack's own account and export role
    allowed = cross_account_allows(resources)
    assert set(allowed) == {"ExportStoresPassphrases"}
    assert allowed["ExportStoresPassphrases"]["Principal"] == {"AWS": "arn:ExportFunctionRole"}
    for name in SERVER_POLICIES:
        sids = [s["Sid"] for s in policy_document(resources[name])["Statement"]]
        assert not [sid for sid in sids if sid.startswith("MemberServers")], name


@pytest.mark.parametrize(
    ("extra", "who"),
    [
        ({"OrganizationId": ORG_ID}, {"aws:PrincipalOrgID": ORG_ID}),
        ({}, {"aws:PrincipalAccount": MEMBERS.split(",")}),
    ],
    ids=["organisation", "account list"],
)
def test_a_hub_lets_the_organisations_servers_read_their_profiles_bundles_only_via_services(
    cfn, extra: dict[str, str], who: dict[str, Any]
):
    # GIVEN a hub, of an organisation or of listed accounts WHEN it is deployed
    resources = deployed(cfn, {**HUB, **extra})
    allowed = cross_account_allows(resources)
    # THEN beside the export role, exactly three statements admit other accounts
    assert set(allowed) - {"ExportStoresPassphrases"} == {
        "MemberServersReadTheirProfilesBundles",
        "MemberServersDecryptBundlesThroughS3",
        "MemberServersDecryptPassphrasesThroughSecretsManager",
    }
    not_the_hub = {"aws:PrincipalAccount": HUB_ACCOUNT}
    has_a_profile = {"aws:PrincipalTag/certrelay:profile": "?*"}
    # AND the bucket admits them to the objects of the profile their role is tagged with
    bundles = allowed["MemberServersReadTheirProfilesBundles"]
    assert bundles["Principal"] == "*"
    assert bundles["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert bundles["Resource"] == "arn:CertificateBucket/certificates/*"
    assert bundles["Condition"] == {
        "StringEquals": {
            **who,
            "s3:ExistingObjectTag/certrelay:profile": "${aws:PrincipalTag/certrelay:profile}",
        },
        "StringNotEquals": not_the_hub,
        "StringLike": has_a_profile,
    }
    # AND each key lets them decrypt only through its service, the passphrase key only for
    # this stack's export secrets (whose own policies name the profile)
    for sid, service, extra_like in (
        ("MemberServersDecryptBundlesThroughS3", "s3", {}),
        (
            "MemberServersDecryptPassphrasesThroughSecretsManager",
            "secretsmanager",
            {"kms:EncryptionContext:SecretARN": SECRETS},
        ),
    ):
        statement = allowed[sid]
        assert statement["Principal"] == "*", sid
        assert statement["Action"] == "kms:Decrypt", sid
        assert statement["Resource"] == "*", sid  # in a key policy: this key
        assert statement["Condition"] == {
            "StringEquals": {**who, "kms:ViaService": f"{service}.{REGION}.amazonaws.com"},
            "StringNotEquals": not_the_hub,
            "StringLike": {**has_a_profile, **extra_like},
        }, sid


# --- the hub account's own certificates in its other listed Regions ------------------------------
# Sessions reads them with the functions' own credentials (it assumes nothing in the hub's own
# account), so the functions' statements on certificates and findings take every listed Region
# in hub mode: a Region-wildcard ARN narrowed by aws:RequestedRegion.
OWN_REGION_STATEMENTS = {
    ("TriageFunctionRole", "ReadCertificates"): "acm",
    ("NotifyFunctionRole", "ReadDistributedCertificates"): "acm",
    ("ApprovalFunctionRole", "RecheckApproversOnTheCertificate"): "acm",
    ("ExportFunctionRole", "ReadCertificates"): "acm",
    ("ExportFunctionRole", "ExportOnlyCertificatesTaggedForAProfile"): "acm",
    ("DistributeFunctionRole", "ReadCertificateTags"): "acm",
    ("FindingsFunctionRole", "ImportOwnFindings"): "securityhub",
    ("FindingsFunctionRole", "FindOpenFindings"): "securityhub",
}


def role_statements(resources: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (name, statement["Sid"]): statement
        for name, resource in of_type(resources, "AWS::IAM::Role").items()
        for policy in resource["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        if "Sid" in statement
    }


def test_single_mode_names_its_own_region_only(cfn):
    statements = role_statements(deployed(cfn, BASE))
    for where, service in OWN_REGION_STATEMENTS.items():
        statement = statements[where]
        assert statement["Resource"].startswith(f"arn:aws:{service}:{REGION}:{HUB_ACCOUNT}:"), where
        assert "aws:RequestedRegion" not in json.dumps(statement.get("Condition", {})), where


@pytest.mark.parametrize(
    ("member_regions", "regions"),
    [("eu-west-1,ap-southeast-2", [REGION, "eu-west-1", "ap-southeast-2"]), ("", [REGION, ""])],
    ids=["listed", "none listed"],
)
def test_a_hub_reads_its_own_certificates_in_every_listed_region_only(
    cfn, member_regions: str, regions: list[str]
):
    # GIVEN a hub listing its Regions WHEN deployed
    statements = role_statements(deployed(cfn, {**HUB, "MemberRegions": member_regions}))
    for where, service in OWN_REGION_STATEMENTS.items():
        statement = statements[where]
        # THEN each statement names the hub's own account in any Region...
        assert statement["Resource"].startswith(f"arn:aws:{service}:*:{HUB_ACCOUNT}:"), where
        # AND only the hub's Region and the listed ones are requested ("" matches no Region)
        assert statement["Condition"]["StringEquals"]["aws:RequestedRegion"] == regions, where
    export = statements[("ExportFunctionRole", "ExportOnlyCertificatesTaggedForAProfile")]
    assert export["Condition"]["StringLike"] == {"aws:ResourceTag/certrelay:profile": "?*"}
