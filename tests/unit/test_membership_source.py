"""Organization.members_source: consulted only for an account the template does not list, in a
Region the hub serves; its failure refuses (raises), never admits."""

from __future__ import annotations

import dataclasses

import pytest

from certrelay.errors import MembershipUnavailable
from certrelay.organization import Organization

HUB, LISTED, READ = "111111111111", "222222222222", "555555555555"
BASE = Organization(
    mode="hub",
    hub_account=HUB,
    hub_region="us-east-1",
    partition="aws",
    member_accounts=frozenset({LISTED}),
    regions=frozenset({"us-east-1", "eu-west-1"}),
)


class Source:
    def __init__(self, accounts: set[str] | None) -> None:
        self.accounts, self.calls = accounts, 0

    def __call__(self) -> frozenset[str]:
        self.calls += 1
        if self.accounts is None:
            raise MembershipUnavailable("cannot read")
        return frozenset(self.accounts)


def test_an_unlisted_account_is_admitted_only_when_the_source_lists_it():
    source = Source({READ, HUB})
    organization = dataclasses.replace(BASE, members_source=source)
    assert organization.admits(READ, "eu-west-1")
    assert not organization.admits("999999999999", "us-east-1")
    # AND the hub is never counted among its members, the listed ones stay
    assert organization.members() == {LISTED, READ}
    assert organization.pairs()[0] == (HUB, "us-east-1")
    assert (READ, "eu-west-1") in organization.pairs()


def test_the_hub_the_listed_accounts_and_foreign_regions_need_no_read():
    source = Source(None)  # every read fails
    organization = dataclasses.replace(BASE, members_source=source)
    assert organization.admits(HUB, "eu-west-1")
    assert organization.admits(LISTED, "us-east-1")
    assert not organization.admits(READ, "ap-south-1")  # a Region it does not serve
    assert source.calls == 0
    # WHEN an unlisted account asks THEN the failure is raised: refused, not admitted
    with pytest.raises(MembershipUnavailable):
        organization.admits(READ, "us-east-1")


def test_without_a_source_the_organization_is_the_listed_one():
    assert BASE.members() == {LISTED}
    assert not BASE.admits(READ, "us-east-1")
    assert dataclasses.replace(BASE, members_source=Source(set())) == BASE  # not compared
    assert "members_source" not in repr(dataclasses.replace(BASE, members_source=Source(set())))
