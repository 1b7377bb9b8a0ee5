"""Which accounts and Regions a stack serves, and the member roles it assumes there."""

from __future__ import annotations

import pytest

from certrelay.config import Settings
from certrelay.errors import ConfigurationError
from certrelay.organization import Organization

HUB = {"account": "111111111111", "region": "us-east-1", "partition": "aws"}
EXTERNAL_ID = "hub-external-id-0123456789"
HUB_ENV = {
    "ORGANIZATION_MODE": "hub",
    "ORGANIZATION_ID": "o-a1b2c3d4e5",
    "MEMBER_ACCOUNT_IDS": "222222222222, 333333333333,111111111111",
    "MEMBER_REGIONS": "eu-west-1",
    "MEMBER_ROLE_PREFIX": "relay",
    "MEMBER_EXTERNAL_ID": EXTERNAL_ID,
}


def test_an_unset_mode_is_todays_single_account_stack_and_ignores_member_settings() -> None:
    # GIVEN no ORGANIZATION_MODE, but member settings left in the environment
    environ = {k: v for k, v in HUB_ENV.items() if k != "ORGANIZATION_MODE"}
    # WHEN the organisation is read
    organization = Organization.from_env(environ, **HUB)
    # THEN it is the single stack: its own account and Region, nothing else
    assert organization == Organization.single("111111111111", "us-east-1", "aws")
    assert organization.admits("111111111111", "us-east-1")
    assert not organization.admits("111111111111", "eu-west-1")
    assert not organization.admits("222222222222", "us-east-1")
    assert organization.pairs() == [("111111111111", "us-east-1")]


def test_a_hub_admits_its_own_and_member_accounts_in_the_listed_regions_only() -> None:
    # GIVEN a hub in us-east-1 with two members and eu-west-1 listed
    organization = Organization.from_env(HUB_ENV, **HUB)
    # THEN the hub's own account is not counted as a member, its Region is always admitted
    assert organization.member_accounts == {"222222222222", "333333333333"}
    assert organization.regions == {"us-east-1", "eu-west-1"}
    assert (organization.role_prefix, organization.organization_id) == ("relay", "o-a1b2c3d4e5")
    # WHEN accounts and Regions are checked THEN only listed pairs are admitted
    for account in ("111111111111", "222222222222", "333333333333"):
        for region in ("us-east-1", "eu-west-1"):
            assert organization.admits(account, region), (account, region)
    assert not organization.admits("999999999999", "us-east-1")
    assert not organization.admits("222222222222", "ap-south-1")


def test_pairs_list_the_hubs_own_first_then_every_other_pair_sorted() -> None:
    organization = Organization.from_env(HUB_ENV, **HUB)
    assert organization.pairs() == [
        ("111111111111", "us-east-1"),
        ("111111111111", "eu-west-1"),
        ("222222222222", "eu-west-1"),
        ("222222222222", "us-east-1"),
        ("333333333333", "eu-west-1"),
        ("333333333333", "us-east-1"),
    ]


def test_the_role_arn_is_member_yamls_name_for_the_kind_and_region() -> None:
    organization = Organization.from_env({**HUB_ENV, "MEMBER_ROLE_PREFIX": ""}, **HUB)
    assert organization.role_arn("222222222222", "eu-west-1", "export") == (
        "arn:aws:iam::222222222222:role/certrelay-export-eu-west-1"
    )
    china = Organization.from_env(
        HUB_ENV, account="111111111111", region="cn-north-1", partition="aws-cn"
    )
    assert china.role_arn("222222222222", "cn-north-1", "read") == (
        "arn:aws-cn:iam::222222222222:role/relay-read-cn-north-1"
    )


def test_the_external_id_never_shows_in_the_repr() -> None:
    organization = Organization.from_env(HUB_ENV, **HUB)
    assert organization.external_id == EXTERNAL_ID
    assert EXTERNAL_ID not in repr(organization)
    assert EXTERNAL_ID not in str(organization)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ORGANIZATION_MODE": "spoke"}, "ORGANIZATION_MODE 'spoke' must be one of"),
        ({"MEMBER_ACCOUNT_IDS": "2222,333333333333"}, "MEMBER_ACCOUNT_IDS: '2222' is not a 12"),
        ({"MEMBER_REGIONS": "eu-west-1,Mars"}, "MEMBER_REGIONS: 'Mars' is not an AWS region"),
        ({"MEMBER_EXTERNAL_ID": ""}, "MEMBER_EXTERNAL_ID must be 16 or more"),
        ({"MEMBER_EXTERNAL_ID": "short-id"}, "MEMBER_EXTERNAL_ID must be 16 or more"),
        ({"MEMBER_EXTERNAL_ID": "sixteen chars and a space"}, "MEMBER_EXTERNAL_ID must be"),
        ({"ORGANIZATION_ID": "org-1"}, "ORGANIZATION_ID 'org-1' is not an organization id"),
        ({"MEMBER_ROLE_PREFIX": "certrelay/x"}, "MEMBER_ROLE_PREFIX 'certrelay/x' must be"),
    ],
)
def test_a_bad_hub_setting_is_one_configuration_error_line(
    change: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        Organization.from_env({**HUB_ENV, **change}, **HUB)
    assert "\n" not in str(caught.value)
    assert EXTERNAL_ID not in str(caught.value)


def test_settings_carry_the_organisation_read_from_the_same_environment() -> None:
    # GIVEN the triage function's environment in a hub stack
    environ = {
        **HUB_ENV,
        "FALLBACK_OWNER_EMAIL": "ops@example.com",
        "AWS_REGION": "us-east-1",
        "STACK_ACCOUNT_ID": "111111111111",
        "STACK_PARTITION": "aws",
    }
    # WHEN the settings are read THEN the organisation is the hub's, built on the stack's own ids
    organization = Settings.from_env(environ).organization
    assert organization == Organization.from_env(environ, **HUB)
    assert organization.is_hub
    # AND without ORGANIZATION_MODE the settings are single mode, as before
    single = Settings.from_env({**environ, "ORGANIZATION_MODE": ""}).organization
    assert single == Organization.single("111111111111", "us-east-1", "aws")
