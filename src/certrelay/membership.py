"""A hub's member accounts as AWS Organizations lists them, not only as the template lists them.

`MemberAccountIds` is a CloudFormation parameter (at most 4,096 characters, about 290 accounts)
and does not follow StackSets auto-deployment. With `OrganizationAccountsRoleArn` set, the hub
assumes that role (in the management account or an Organizations delegated administrator, with
the members' external id), checks that the organisation is the stack's `OrganizationId`, and
takes every ACTIVE account it lists. The answer is kept for `MEMBERSHIP_TTL`, so an account that
leaves the organisation (or is suspended) stops being admitted within that time.

It fails closed: an answer that cannot be read is `MembershipUnavailable` (or `ServiceThrottled`),
never a stale list past its time and never "admit everyone".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from certrelay.clients import client
from certrelay.errors import (
    STS_AND_ORGANIZATIONS_THROTTLING,
    ConfigurationError,
    MembershipUnavailable,
    ServiceThrottled,
)

MEMBERSHIP_TTL = timedelta(minutes=15)
ROLE_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}\Z")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class OrganizationAccounts:
    """The organisation's ACTIVE accounts, read through a role and kept for a bounded time."""

    def __init__(
        self,
        role_arn: str,
        organization_id: str,
        external_id: str,
        *,
        region: str,
        make_client: Callable[..., Any] = client,
        now: Callable[[], datetime] = _utc_now,
        ttl: timedelta = MEMBERSHIP_TTL,
    ) -> None:
        if not ROLE_ARN.fullmatch(role_arn):
            raise ConfigurationError(
                f"ORGANIZATION_ACCOUNTS_ROLE_ARN {role_arn[:200]!r} is not an IAM role ARN"
            )
        if not organization_id:
            raise ConfigurationError(
                "ORGANIZATION_ACCOUNTS_ROLE_ARN needs ORGANIZATION_ID: the hub checks that the "
                "accounts it reads are that organisation's"
            )
        self.role_arn = role_arn
        self.organization_id = organization_id
        self._external_id = external_id
        self._region = region
        self._make_client = make_client
        self._now = now
        self._ttl = ttl
        self._kept: tuple[frozenset[str], datetime] | None = None

    def __repr__(self) -> str:
        return f"OrganizationAccounts({self.role_arn!r}, {self.organization_id!r})"

    def __call__(self) -> frozenset[str]:
        """The ACTIVE accounts, from the last read if it is younger than the TTL."""
        now = self._now()
        if self._kept is not None and now < self._kept[1] + self._ttl:
            return self._kept[0]
        self._kept = None  # a failed read below must not leave the old answer in use
        accounts = self._read()
        self._kept = (accounts, now)
        return accounts

    def _read(self) -> frozenset[str]:
        try:
            organizations = self._client()
            found = organizations.describe_organization()["Organization"]["Id"]
            if found != self.organization_id:
                raise ConfigurationError(
                    f"{self.role_arn} reads organization {found}, not this stack's "
                    f"OrganizationId {self.organization_id}"
                )
            pages = organizations.get_paginator("list_accounts").paginate()
            return frozenset(
                account["Id"]
                for page in pages
                for account in page.get("Accounts", [])
                if account.get("Status") == "ACTIVE"
            )
        except ClientError as error:
            raise _typed(error, self.role_arn) from None
        except BotoCoreError as error:
            raise MembershipUnavailable(
                f"cannot read the organisation's accounts through {self.role_arn}: "
                f"{type(error).__name__}"
            ) from None

    def _client(self) -> Any:
        sts = self._make_client("sts", region_name=self._region)
        answer = sts.assume_role(
            RoleArn=self.role_arn,
            RoleSessionName="certrelay-membership",
            ExternalId=self._external_id,
        )["Credentials"]
        return self._make_client(
            "organizations",
            region_name=self._region,
            aws_access_key_id=answer["AccessKeyId"],
            aws_secret_access_key=answer["SecretAccessKey"],
            aws_session_token=answer["SessionToken"],
        )


def _typed(error: ClientError, role_arn: str) -> Exception:
    """The typed error for a refused read; the message names the role and the code only."""
    code = error.response.get("Error", {}).get("Code", "")
    if code in STS_AND_ORGANIZATIONS_THROTTLING:
        return ServiceThrottled(f"Organizations throttled the read through {role_arn} ({code})")
    return MembershipUnavailable(
        f"cannot read the organisation's accounts through {role_arn} ({code}): no account "
        "outside MemberAccountIds is admitted until it can"
    )
