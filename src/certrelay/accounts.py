"""AWS clients for the account and Region a certificate lives in.

The hub's own account is reached with the function's own credentials. A member account is
reached through the role member.yaml creates there (`Organization.role_arn`), assumed with the
organisation's external id; the temporary credentials are kept per (account, Region, role) until
five minutes before they expire. A role that cannot be assumed is `MemberRoleUnavailable`; a
Region the member (or the hub) has not enabled is `RegionNotEnabled`. Credentials never appear
in a log line, a repr or an error message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal

from botocore.exceptions import ClientError

from certrelay.arns import CERTIFICATE_ARN
from certrelay.clients import client
from certrelay.errors import (
    STS_AND_ORGANIZATIONS_THROTTLING,
    ConfigurationError,
    ForeignEvent,
    MemberRoleUnavailable,
    RegionNotEnabled,
    ServiceThrottled,
)
from certrelay.organization import Organization

RoleKind = Literal["read", "export", "install"]
REFRESH_BEFORE = timedelta(minutes=5)
# STS's answers when the role is missing or its trust policy / external id refuses the hub.
_ROLE_REFUSED = frozenset({"AccessDenied", "AccessDeniedException"})
# STS or a service in a Region that is not enabled for the account (STS says so; a service
# there does not know the session's token).
_REGION_REFUSED = frozenset(
    {"RegionDisabledException", "InvalidClientTokenId", "UnrecognizedClientException"}
)


@dataclass(frozen=True)
class _Credentials:
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expires_at: datetime


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Sessions:
    """Clients per (service, account, Region, role), through the member's role where needed."""

    def __init__(
        self,
        organization: Organization,
        *,
        make_client: Callable[..., Any] = client,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._organization = organization
        self._make_client = make_client
        self._now = now
        self._credentials: dict[tuple[str, str, str], _Credentials] = {}
        self._clients: dict[tuple[str, str, str, str], tuple[Any, datetime | None]] = {}

    def __repr__(self) -> str:
        return f"Sessions({self._organization!r}, cached={len(self._credentials)})"

    @property
    def organization(self) -> Organization:
        return self._organization

    def is_home(self, account: str, region: str) -> bool:
        """The hub's own account and Region: where the function's own clients act."""
        return (account, region) == (self._organization.hub_account, self._organization.hub_region)

    def client(self, service: str, *, account: str, region: str, role: RoleKind) -> Any:
        """A client for `service` acting in `account` and `region` as `role`."""
        if not self._organization.admits(account, region):
            raise ForeignEvent(
                f"account {account} in {region} is not one this stack serves; no role is assumed"
            )
        key = (service, account, region, role)
        if account == self._organization.hub_account:
            if key not in self._clients:
                self._clients[key] = (self._make_client(service, region_name=region), None)
            return self._clients[key][0]
        credentials = self._member_credentials(account, region, role)
        cached = self._clients.get(key)
        if cached is not None and cached[1] == credentials.expires_at:
            return cached[0]
        made = self._make_client(
            service,
            region_name=region,
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            aws_session_token=credentials.session_token,
        )
        made.meta.events.register("after-call.*.*", _refuse_disabled_region(account, region))
        self._clients[key] = (made, credentials.expires_at)
        return made

    def for_certificate(self, arn: str, role: RoleKind) -> Callable[[str], Any]:
        """Clients by service name in the certificate's own account and Region."""
        parts = CERTIFICATE_ARN.fullmatch(arn)
        if parts is None or parts["partition"] != self._organization.partition:
            raise ForeignEvent(f"{arn[:120]!r} is not an ACM certificate ARN of this partition")
        account, region = parts["account"], parts["region"]
        return lambda service: self.client(service, account=account, region=region, role=role)

    def _member_credentials(self, account: str, region: str, role: RoleKind) -> _Credentials:
        key = (account, region, role)
        cached = self._credentials.get(key)
        if cached is not None and self._now() < cached.expires_at - REFRESH_BEFORE:
            return cached
        role_arn = self._organization.role_arn(account, region, role)
        sts = self._make_client("sts", region_name=region)
        try:
            answer = sts.assume_role(
                RoleArn=role_arn,
                RoleSessionName=f"certrelay-{role}",
                ExternalId=self._organization.external_id,
            )["Credentials"]
        except ClientError as error:
            raise _typed(error, account, region, role_arn) from None
        fresh = _Credentials(
            access_key_id=answer["AccessKeyId"],
            secret_access_key=answer["SecretAccessKey"],
            session_token=answer["SessionToken"],
            expires_at=_as_utc(answer["Expiration"]),
        )
        self._credentials[key] = fresh
        return fresh


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _typed(error: ClientError, account: str, region: str, role_arn: str) -> Exception:
    """The typed error for a refused AssumeRole; the message names the role, never a secret."""
    code = error.response.get("Error", {}).get("Code", "")
    if code in _ROLE_REFUSED:
        return MemberRoleUnavailable(
            f"cannot assume {role_arn} ({code}): is member.yaml deployed in account {account} "
            f"and {region}, with the hub's external id?"
        )
    if code in _REGION_REFUSED:
        return RegionNotEnabled(
            f"{region} refuses credentials for account {account} ({code}): the Region is not "
            "enabled there"
        )
    if code in STS_AND_ORGANIZATIONS_THROTTLING:
        return ServiceThrottled(f"STS throttled AssumeRole of {role_arn} ({code})")
    return error


def _refuse_disabled_region(account: str, region: str) -> Callable[..., None]:
    """An after-call hook: a member's service refusing the session token is RegionNotEnabled."""

    def hook(parsed: dict[str, Any] | None = None, **_: Any) -> None:
        code = ((parsed or {}).get("Error") or {}).get("Code", "")
        if code in _REGION_REFUSED:
            raise RegionNotEnabled(
                f"{region} refuses the session for account {account} ({code}): the Region is "
                "not enabled there"
            )

    return hook


@cache
def kept_client(service: str, region: str) -> Any:
    """A client with the container's own credentials, made once per service and Region."""
    return client(service, region_name=region)


def kept_sessions(environ: Mapping[str, str]) -> Sessions | None:
    """sessions_from_env, made once per container for the same settings: its credentials cache
    lives as long as the container (a handler's init builds it, every invocation reuses it)."""
    names = sorted(n for n in environ if n.startswith(_SESSION_SETTINGS))
    return _kept(tuple((n, environ[n]) for n in names))


_SESSION_SETTINGS = ("ORGANIZATION_", "MEMBER_", "STACK_", "AWS_REGION")


@cache
def _kept(settings: tuple[tuple[str, str], ...]) -> Sessions | None:
    return sessions_from_env(dict(settings))


def sessions_from_env(environ: Mapping[str, str]) -> Sessions | None:
    """Hub mode: the hub's Sessions (STACK_ACCOUNT_ID, AWS_REGION, STACK_PARTITION and the
    ORGANIZATION_* / MEMBER_* settings). Single mode: None, and nothing else is read."""
    if (environ.get("ORGANIZATION_MODE", "").strip() or "single") == "single":
        return None
    where = {n: environ.get(n, "").strip() for n in ("STACK_ACCOUNT_ID", "AWS_REGION")}
    if not all(where.values()):
        raise ConfigurationError("hub mode needs STACK_ACCOUNT_ID and AWS_REGION (the template's)")
    organization = Organization.from_env(
        environ,
        account=where["STACK_ACCOUNT_ID"],
        region=where["AWS_REGION"],
        partition=environ.get("STACK_PARTITION", "").strip() or "aws",
    )
    return Sessions(organization, make_client=client) if organization.is_hub else None


def clients_for(
    arn: str, role: RoleKind, *, sessions: Sessions | None, own: Callable[[str], Any]
) -> Callable[[str], Any]:
    """Clients by service name for the certificate `arn` names: `own` (the function's own
    clients, as in single mode) for the hub's own account and Region, else through the member
    role of `role`. An ARN that is not a certificate's is left to the step's own check."""
    parts = CERTIFICATE_ARN.fullmatch(arn) if isinstance(arn, str) else None
    if sessions is None or parts is None or sessions.is_home(parts["account"], parts["region"]):
        return own
    return sessions.for_certificate(arn, role)
