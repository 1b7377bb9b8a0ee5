"""Which accounts and Regions a certrelay stack serves: its own (single mode) or an organisation's.

In hub mode one stack handles the certificates of its own account and of the member accounts
the template lists, in the Regions it lists, and reaches a member through the role that
member.yaml creates there: `<prefix>-<kind>-<region>`. `Organization` holds those facts, read
once from the environment the template sets; nothing here calls AWS. A hub given
ORGANIZATION_ACCOUNTS_ROLE_ARN also admits the ACTIVE accounts AWS Organizations lists: its
`members_source` (certrelay.membership) reads them when an account is not listed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from certrelay.arns import ACCOUNT_ID, REGION
from certrelay.errors import ConfigurationError

Mode = Literal["single", "hub"]
MODES: tuple[Mode, ...] = ("single", "hub")
DEFAULT_ROLE_PREFIX = "certrelay"
MIN_EXTERNAL_ID = 16  # the template's Rules ask the same of MemberExternalId in hub mode
ORGANIZATION_ID = re.compile(r"o-[a-z0-9]{10,32}\Z")
# IAM role-name characters; the longest kind and Region must still fit IAM's 64 characters.
ROLE_PREFIX = re.compile(r"[A-Za-z0-9+=,.@_-]{1,32}\Z")
EXTERNAL_ID = re.compile(r"[A-Za-z0-9+=,.@:/_-]{2,1224}\Z")


@dataclass(frozen=True)
class Organization:
    """The (account, Region) pairs a stack takes events from, and how it reaches a member."""

    mode: str  # "single" | "hub"
    hub_account: str
    hub_region: str
    partition: str
    member_accounts: frozenset[str]  # the hub's own account is not included
    regions: frozenset[str]  # the hub's Region included
    role_prefix: str = DEFAULT_ROLE_PREFIX
    external_id: str = ""
    organization_id: str = ""
    # Hub mode with OrganizationAccountsRoleArn: the organisation's ACTIVE accounts, read (and
    # kept for a bounded time) when needed; raises MembershipUnavailable rather than guess.
    members_source: Callable[[], frozenset[str]] | None = field(
        default=None, compare=False, repr=False
    )

    def __repr__(self) -> str:
        # The external id is a shared secret of sorts: never in a log line or a traceback.
        return (
            f"Organization(mode={self.mode!r}, hub_account={self.hub_account!r}, "
            f"hub_region={self.hub_region!r}, partition={self.partition!r}, "
            f"member_accounts={sorted(self.member_accounts)!r}, regions={sorted(self.regions)!r}, "
            f"role_prefix={self.role_prefix!r}, organization_id={self.organization_id!r})"
        )

    @classmethod
    def single(cls, account: str, region: str, partition: str) -> Organization:
        """Today's single-account stack: its own account and Region, nothing else."""
        return cls(
            mode="single",
            hub_account=account,
            hub_region=region,
            partition=partition,
            member_accounts=frozenset(),
            regions=frozenset({region}),
        )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], *, account: str, region: str, partition: str
    ) -> Organization:
        """Read ORGANIZATION_MODE and the MEMBER_* settings; one ConfigurationError line if wrong.

        Single mode (the default) ignores the member settings, as the template does.
        """
        mode = environ.get("ORGANIZATION_MODE", "").strip() or "single"
        if mode not in MODES:
            raise ConfigurationError(f"ORGANIZATION_MODE {mode!r} must be one of: single, hub")
        if mode == "single":
            return cls.single(account, region, partition)
        members = _listed(environ, "MEMBER_ACCOUNT_IDS", ACCOUNT_ID, "a 12-digit account ID")
        regions = _listed(environ, "MEMBER_REGIONS", REGION, "an AWS region name")
        organization_id, external_id = _organization_id(environ), _external_id(environ)
        return cls(
            mode="hub",
            hub_account=account,
            hub_region=region,
            partition=partition,
            member_accounts=members - {account},
            regions=regions | {region},
            role_prefix=_role_prefix(environ),
            external_id=external_id,
            organization_id=organization_id,
            members_source=_members_source(environ, organization_id, external_id, region),
        )

    @property
    def is_hub(self) -> bool:
        return self.mode == "hub"

    def admits(self, account: str, region: str) -> bool:
        """Whether events and certificates of this account and Region are this stack's to act on."""
        if not self.is_hub:
            return (account, region) == (self.hub_account, self.hub_region)
        if region not in self.regions:
            return False
        if account == self.hub_account or account in self.member_accounts:
            return True  # listed: admitted without asking Organizations
        return self.members_source is not None and account in self.members_source()

    def members(self) -> frozenset[str]:
        """Every member account besides the hub's: the listed ones and the organisation's."""
        read = self.members_source() if self.is_hub and self.members_source else frozenset()
        return (self.member_accounts | read) - {self.hub_account}

    def pairs(self) -> list[tuple[str, str]]:
        """Every admitted (account, Region), the hub's own first, then sorted."""
        hub_first = [(self.hub_account, self.hub_region)]
        others = {(a, r) for a in {self.hub_account, *self.members()} for r in self.regions}
        return hub_first + sorted(others - set(hub_first))

    def role_arn(self, account: str, region: str, kind: str) -> str:
        """The member role member.yaml names `<prefix>-<kind>-<region>` in that account."""
        return f"arn:{self.partition}:iam::{account}:role/{self.role_prefix}-{kind}-{region}"


def _members_source(
    environ: Mapping[str, str], organization_id: str, external_id: str, region: str
) -> Callable[[], frozenset[str]] | None:
    role_arn = environ.get("ORGANIZATION_ACCOUNTS_ROLE_ARN", "").strip()
    if not role_arn:
        return None
    from certrelay.membership import OrganizationAccounts  # boto3: only when a role is given

    return OrganizationAccounts(role_arn, organization_id, external_id, region=region)


def _listed(
    environ: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str
) -> frozenset[str]:
    items = _split(environ.get(name, ""))
    for item in items:
        if not pattern.fullmatch(item):
            raise ConfigurationError(f"{name}: {item!r} is not {what}")
    return frozenset(items)


def _split(text: str) -> Iterable[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _role_prefix(environ: Mapping[str, str]) -> str:
    prefix = environ.get("MEMBER_ROLE_PREFIX", "").strip() or DEFAULT_ROLE_PREFIX
    if not ROLE_PREFIX.fullmatch(prefix):
        raise ConfigurationError(
            f"MEMBER_ROLE_PREFIX {prefix!r} must be 1 to 32 IAM role-name characters"
        )
    return prefix


def _external_id(environ: Mapping[str, str]) -> str:
    external_id = environ.get("MEMBER_EXTERNAL_ID", "")
    if len(external_id) < MIN_EXTERNAL_ID or not EXTERNAL_ID.fullmatch(external_id):
        # The value itself is never echoed: it is what member roles trust.
        raise ConfigurationError(
            f"MEMBER_EXTERNAL_ID must be {MIN_EXTERNAL_ID} or more of the characters "
            "STS accepts in hub mode (letters, digits, +=,.@:/_-)"
        )
    return external_id


def _organization_id(environ: Mapping[str, str]) -> str:
    text = environ.get("ORGANIZATION_ID", "").strip()
    if text and not ORGANIZATION_ID.fullmatch(text):
        raise ConfigurationError(f"ORGANIZATION_ID {text!r} is not an organization id (o-...)")
    return text
