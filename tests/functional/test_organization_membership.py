"""A hub given OrganizationAccountsRoleArn admits the organisation's ACTIVE accounts as AWS
Organizations lists them, not only MemberAccountIds; it checks the organisation's id, keeps
the list for a bounded time, and refuses (fails closed) when it cannot read it. moto with
several accounts: the management account 444444444444 holds the organisation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from certrelay.accounts import Sessions, sessions_from_env
from certrelay.config import Settings
from certrelay.errors import ConfigurationError, ForeignEvent, MembershipUnavailable
from certrelay.membership import MEMBERSHIP_TTL, OrganizationAccounts
from certrelay.organization import Organization
from certrelay.tasks.org_sweep import Deployment
from certrelay.tasks.triage import Triager
from tests.functional.org_accounts import EXTERNAL_ID, HUB, HUB_ENV, MEMBER, OUTSIDER, REGION
from tests.functional.test_triage import acm_event, import_certificate

MANAGEMENT = "444444444444"
ROLE = f"arn:aws:iam::{MANAGEMENT}:role/certrelay-organization-accounts"
NOW = datetime.now(UTC).replace(microsecond=0)
EXECUTION = f"arn:aws:states:{REGION}:{HUB}:execution:CertrelayStateMachine:run-1"


def session(account: str) -> boto3.Session:
    """Credentials in `account` (moto: AssumeRole switches accounts; no trust policy is read)."""
    answer = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/certrelay-read-{REGION}",
        RoleSessionName="test",
        ExternalId=EXTERNAL_ID,
    )["Credentials"]
    return boto3.Session(
        answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"], REGION
    )


@dataclass(frozen=True)
class Org:
    """An organisation with the management account, one joined account, one suspended one."""

    id: str
    joined: str
    suspended: str
    organizations: Any  # the management account's client

    def env(self, **more: str) -> dict[str, str]:
        return {
            **HUB_ENV,
            "ORGANIZATION_ID": self.id,
            "ORGANIZATION_ACCOUNTS_ROLE_ARN": ROLE,
            "FALLBACK_OWNER_EMAIL": "ops@example.com",
            **more,
        }

    def add_account(self, name: str) -> str:
        created = self.organizations.create_account(Email=f"{name}@example.com", AccountName=name)
        return str(created["CreateAccountStatus"]["AccountId"])


@pytest.fixture
def org(accounts: None) -> Org:
    organizations = session(MANAGEMENT).client("organizations")
    organization_id = organizations.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    partial = Org(organization_id, "", "", organizations)
    joined, suspended = partial.add_account("joined"), partial.add_account("suspended")
    organizations.close_account(AccountId=suspended)  # moto: SUSPENDED at once
    return Org(organization_id, joined, suspended, organizations)


def event_from(account: str, arn: str) -> dict[str, Any]:
    return {"event": {**acm_event("Expired", arn), "account": account}, "execution": EXECUTION}


def foreign_arn(account: str) -> str:
    return f"arn:aws:acm:{REGION}:{account}:certificate/0000aaaa-1111-2222-3333-444455556666"


def triager(settings: Settings, **sessions: Any) -> Triager:
    hub = Sessions(settings.organization, **sessions)
    return Triager(settings, {}, boto3.client("acm", region_name=REGION), sessions=hub)


def test_an_organisation_account_not_in_member_account_ids_is_triaged_through_its_read_role(
    org: Org,
) -> None:
    # GIVEN a certificate in an account that joined the organisation, not in MemberAccountIds
    settings = Settings.from_env(org.env())
    assert org.joined not in settings.organization.member_accounts
    arn = import_certificate(session(org.joined).client("acm"), days_left=5, tags={})
    # WHEN the hub triages ACM's event from that account
    decision = triager(settings).triage(event_from(org.joined, arn), now=NOW)
    # THEN it is admitted and read in that account
    assert decision["certificate"]["arn"] == arn
    # AND the org sweep covers the organisation's accounts too, in every Region
    pairs = Deployment.from_env(org.env()).organization.pairs()
    assert pairs[0] == (HUB, REGION)
    assert {(org.joined, REGION), (org.joined, "eu-west-1"), (MANAGEMENT, REGION)} <= set(pairs)
    assert (MEMBER, REGION) in pairs  # the listed accounts stay
    # AND the hub's sessions (export, distribute, findings, approvals) admit it as well
    hub = sessions_from_env(org.env())
    assert hub is not None
    assert hub.organization.admits(org.joined, REGION)


def test_an_account_outside_the_organisation_is_refused_at_triage(org: Org) -> None:
    settings = Settings.from_env(org.env())
    with pytest.raises(ForeignEvent, match=OUTSIDER):
        triager(settings).triage(event_from(OUTSIDER, foreign_arn(OUTSIDER)), now=NOW)
    assert (OUTSIDER, REGION) not in settings.organization.pairs()


def test_a_suspended_account_of_the_organisation_is_refused(org: Org) -> None:
    settings = Settings.from_env(org.env())
    with pytest.raises(ForeignEvent, match=org.suspended):
        triager(settings).triage(event_from(org.suspended, foreign_arn(org.suspended)), now=NOW)
    assert all(account != org.suspended for account, _ in settings.organization.pairs())


def refusing_sts(service: str, **kwargs: Any) -> Any:
    """make_client whose STS refuses AssumeRole (the management role missing or distrusting)."""
    client = boto3.client(service, **kwargs)
    if service == "sts":
        stubber = Stubber(client)
        stubber.add_client_error("assume_role", "AccessDenied", "not authorized", 403)
        stubber.activate()
    return client


def hub_with(reader: OrganizationAccounts, org: Org) -> Organization:
    base = Organization.from_env(org.env(), account=HUB, region=REGION, partition="aws")
    return Organization(
        **{**base.__dict__, "members_source": reader},
    )


def test_a_read_failure_refuses_every_unlisted_account_with_the_typed_error(org: Org) -> None:
    # GIVEN a hub whose organisation role cannot be assumed
    reader = OrganizationAccounts(
        ROLE, org.id, EXTERNAL_ID, region=REGION, make_client=refusing_sts
    )
    organization = hub_with(reader, org)
    settings = Settings.from_env(org.env())
    settings = Settings(**{**settings.__dict__, "organization": organization})
    # WHEN an organisation account's event is triaged THEN it is not admitted: the typed error
    with pytest.raises(
        MembershipUnavailable, match=r"certrelay-organization-accounts.*AccessDenied"
    ):
        triager(settings).triage(event_from(org.joined, foreign_arn(org.joined)), now=NOW)
    # AND the sweep cannot list its pairs either (it reports, it does not guess)
    with pytest.raises(MembershipUnavailable):
        organization.pairs()
    # AND the listed members and the hub stay admitted without asking
    assert organization.admits(MEMBER, REGION)
    assert organization.admits(HUB, "eu-west-1")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def switchable(fail: Callable[[], bool]) -> Callable[..., Any]:
    def make(service: str, **kwargs: Any) -> Any:
        return refusing_sts(service, **kwargs) if fail() else boto3.client(service, **kwargs)

    return make


def test_the_list_is_kept_for_the_ttl_then_read_again_and_never_used_stale(org: Org) -> None:
    clock, failing = Clock(), [False]
    reader = OrganizationAccounts(
        ROLE,
        org.id,
        EXTERNAL_ID,
        region=REGION,
        now=clock,
        make_client=switchable(lambda: failing[0]),
    )
    organization = hub_with(reader, org)
    # GIVEN the joined account admitted at the first read
    assert organization.admits(org.joined, REGION)
    # WHEN it leaves the organisation (suspended) THEN it is still admitted within the TTL
    org.organizations.close_account(AccountId=org.joined)
    clock.now = NOW + MEMBERSHIP_TTL - timedelta(seconds=1)
    assert organization.admits(org.joined, REGION)
    # AND no longer once the TTL has passed
    clock.now = NOW + MEMBERSHIP_TTL
    assert not organization.admits(org.joined, REGION)
    # AND an account that joins is admitted at the next read, not before
    newcomer = org.add_account("newcomer")
    assert not organization.admits(newcomer, REGION)
    clock.now += MEMBERSHIP_TTL
    assert organization.admits(newcomer, REGION)
    # AND when the next read fails, the last list is not used: refused with the typed error
    failing[0] = True
    clock.now += MEMBERSHIP_TTL
    with pytest.raises(MembershipUnavailable):
        organization.admits(newcomer, REGION)
    with pytest.raises(MembershipUnavailable):  # not kept either: each ask reads again
        organization.admits(newcomer, REGION)
    failing[0] = False
    assert organization.admits(newcomer, REGION)


def test_a_role_reading_another_organisation_is_a_configuration_error(org: Org) -> None:
    settings = Settings.from_env(org.env(ORGANIZATION_ID="o-aaaaaaaaaa"))
    with pytest.raises(ConfigurationError, match=f"reads organization {org.id}"):
        settings.organization.admits(org.joined, REGION)


def test_the_role_needs_an_organization_id_and_a_role_arn(org: Org) -> None:
    with pytest.raises(ConfigurationError, match="needs ORGANIZATION_ID"):
        Settings.from_env(org.env(ORGANIZATION_ID=""))
    with pytest.raises(ConfigurationError, match="not an IAM role ARN"):
        Settings.from_env(org.env(ORGANIZATION_ACCOUNTS_ROLE_ARN="role/admin"))


def test_without_the_role_a_hub_and_a_single_stack_are_unchanged(org: Org) -> None:
    # GIVEN hub mode without OrganizationAccountsRoleArn: MemberAccountIds only, nothing read
    listed = Settings.from_env(org.env(ORGANIZATION_ACCOUNTS_ROLE_ARN="")).organization
    assert listed.members_source is None
    assert not listed.admits(org.joined, REGION)
    assert listed.members() == {MEMBER, "333333333333"}
    # AND a single stack ignores the setting, as it ignores every member setting
    single = Settings.from_env(org.env(ORGANIZATION_MODE="single")).organization
    assert single == Organization.single(HUB, REGION, "aws")
    assert single.members_source is None
