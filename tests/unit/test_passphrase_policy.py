"""The passphrase secret's resource policy: the profile's hosts only, and in hub mode the
profile's hosts of the organisation's other accounts too (moto does not enforce it, so the
policy is checked as AWS documents its semantics)."""

from __future__ import annotations

from typing import Any

import pytest

from certrelay.export import passphrase_policy
from certrelay.organization import Organization

HUB = "111111111111"
EXPORT_ROLE = f"arn:aws:iam::{HUB}:role/certrelay-ExportFunctionRole-abc"
DENY = {
    "Sid": "OnlyThisProfilesHostsReadThePassphrase",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "secretsmanager:GetSecretValue",
    "Resource": "*",
    "Condition": {
        "StringNotEquals": {"aws:PrincipalTag/certrelay:profile": "web"},
        "ArnNotEquals": {"aws:PrincipalArn": EXPORT_ROLE},
    },
}


def hub(*, organization_id: str = "", members: tuple[str, ...] = ()) -> Organization:
    return Organization(
        mode="hub",
        hub_account=HUB,
        hub_region="us-east-1",
        partition="aws",
        member_accounts=frozenset(members),
        regions=frozenset({"us-east-1"}),
        external_id="x" * 16,
        organization_id=organization_id,
    )


@pytest.mark.parametrize("organization", [None, Organization.single(HUB, "us-east-1", "aws")])
def test_a_single_account_stacks_passphrase_has_only_the_profiles_deny(
    organization: Organization | None,
) -> None:
    # GIVEN a single-account stack WHEN it writes the "web" passphrase's policy
    policy = passphrase_policy("web", EXPORT_ROLE, organization)
    # THEN it is exactly the Deny it always was: no other account is allowed anything
    assert policy == {"Version": "2012-10-17", "Statement": [DENY]}


def allow_of(policy: dict[str, Any]) -> dict[str, Any]:
    deny, allow = policy["Statement"]
    assert deny == DENY  # the profile's Deny stays first and unchanged
    assert allow["Effect"] == "Allow"
    assert allow["Principal"] == "*"
    assert allow["Action"] == "secretsmanager:GetSecretValue"  # nothing else, not even Describe
    assert allow["Resource"] == "*"  # a resource policy's "*" is this secret
    assert allow["Condition"]["StringNotEquals"] == {"aws:PrincipalAccount": HUB}
    result: dict[str, Any] = allow
    return result


def test_a_hub_of_an_organisation_allows_its_accounts_hosts_of_that_profile_only() -> None:
    # GIVEN a hub of organisation o-exampleorgid WHEN it writes the "web" passphrase's policy
    policy = passphrase_policy("web", EXPORT_ROLE, hub(organization_id="o-exampleorgid1"))
    # THEN principals of the organisation whose role carries certrelay:profile=web may read it;
    # the hub's own principals keep needing ServerInstallPolicy, as in single mode
    assert allow_of(policy)["Condition"]["StringEquals"] == {
        "aws:PrincipalOrgID": "o-exampleorgid1",
        "aws:PrincipalTag/certrelay:profile": "web",
    }


def test_a_hub_with_listed_accounts_allows_those_accounts_hosts_of_that_profile_only() -> None:
    # GIVEN a hub with no organisation id but two member accounts
    organization = hub(members=("333333333333", "222222222222"))
    # WHEN it writes the "db" passphrase's policy
    policy = passphrase_policy("db", EXPORT_ROLE, organization)
    # THEN only those accounts' principals tagged certrelay:profile=db are allowed
    deny, allow = policy["Statement"]
    assert deny["Condition"]["StringNotEquals"] == {"aws:PrincipalTag/certrelay:profile": "db"}
    assert allow["Condition"]["StringEquals"] == {
        "aws:PrincipalAccount": ["222222222222", "333333333333"],
        "aws:PrincipalTag/certrelay:profile": "db",
    }
    assert allow["Condition"]["StringNotEquals"] == {"aws:PrincipalAccount": HUB}


def test_a_hub_admitting_no_other_account_allows_nobody_else() -> None:
    # GIVEN a hub (as a unit, without the template's Rules) with neither id nor members
    # WHEN it writes a policy THEN there is no Allow with an empty (match-all) principal set
    assert passphrase_policy("web", EXPORT_ROLE, hub()) == {
        "Version": "2012-10-17",
        "Statement": [DENY],
    }
