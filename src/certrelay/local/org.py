"""Organisation mode of the local engine: a hub account and member accounts on one embedded AWS.

The hub (111111111111) runs template.yaml with OrganizationMode=hub; each member account runs
member.yaml in each Region, deployed by the engine's own `deploy` on credentials of that account
(an assumed role: moto keeps per-account state and STS AssumeRole switches accounts, once
MOTO_ACCOUNT_ID is unset; see moto_fixes.accounts_follow_credentials). ACM events start on the
default bus of the certificate's own account and Region; the member's forwarding rule takes
them to the hub's bus, which keeps the original account, Region and resources
(moto_fixes.bus_delivers_to_state_machines). An account outside the organisation
(999999999999) has only a forwarding rule of its own: on AWS the hub bus's policy refuses its
PutEvents; moto evaluates no bus policy, so here its events reach triage, which refuses them
(ForeignEvent) as the second line of the same defence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from moto.events.models import events_backends

from certrelay.local.fleet.seed import (
    Fleet,
    FleetError,
    FleetServer,
    Issuers,
    SeededCertificate,
    certificate_backend,
    seed_certificates,
)
from certrelay.local.fleet.servers import seed_files
from certrelay.local.stack import Stack, deploy
from certrelay.local.template import Template, load_sam

if TYPE_CHECKING:
    from certrelay.local.engine import LocalEngine

HUB_ACCOUNT = "111111111111"
MEMBER_ACCOUNTS = ("222222222222", "333333333333")
REGIONS = ("us-east-1", "eu-west-1")  # the first is the hub's
NON_MEMBER_ACCOUNT = "999999999999"
# The external id the hub passes to sts:AssumeRole, locally (member.yaml wants 16+ characters).
EXTERNAL_ID = "certrelay-local-external-id"
# What an organisation's management account deploys member stacks with (a StackSet's
# execution role does the same job); any role name works in moto, none needs to exist.
DEPLOY_ROLE = "OrganizationAccountAccessRole"
MEMBER_TEMPLATE = Path(__file__).resolve().parents[3] / "member.yaml"


@dataclass(frozen=True)
class LocalOrganization:
    """Who is in the local organisation, and what the hub stack is told about it."""

    hub: str = HUB_ACCOUNT
    members: tuple[str, ...] = MEMBER_ACCOUNTS
    regions: tuple[str, ...] = REGIONS
    non_members: tuple[str, ...] = (NON_MEMBER_ACCOUNT,)
    external_id: str = EXTERNAL_ID
    role_prefix: str = "certrelay"

    @property
    def region(self) -> str:
        """The hub's Region."""
        return self.regions[0]

    def hub_parameters(self) -> dict[str, str]:
        """template.yaml's organisation parameters for this organisation (spec-12)."""
        return {
            "OrganizationMode": "hub",
            "MemberAccountIds": ",".join(self.members),
            "MemberRegions": ",".join(self.regions),
            "MemberExternalId": self.external_id,
            "MemberRoleNamePrefix": self.role_prefix,
        }

    def hub_fleet(self, fleet: Fleet) -> Fleet:
        """The fleet with its top-level certificates and servers in the hub's account."""
        unknown = sorted(a for a, s in fleet.accounts.items() if s.member and a not in self.members)
        if unknown:
            raise FleetError(
                f"the fleet's member accounts {', '.join(unknown)} are not in the organisation "
                f"({', '.join(self.members)})"
            )
        return fleet.model_copy(update={"account": self.hub, "region": self.region})


@dataclass
class Members:
    """What organisation mode added to the engine: member stacks, the stray forwarder."""

    stacks: dict[tuple[str, str], Stack] = field(default_factory=dict)  # (account, region)
    hub_bus_arn: str = ""
    forwarders: list[tuple[str, str]] = field(default_factory=list)  # non-member (acct, region)


def account_session(account: str, region: str) -> boto3.Session:
    """Credentials in `account`: an assumed role there (moto puts its key in that account)."""
    credentials = boto3.client("sts", region_name=region).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{DEPLOY_ROLE}",
        RoleSessionName="certrelay-local",
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def member_template(path: Path = MEMBER_TEMPLATE) -> Template:
    """member.yaml as CloudFormation takes it: plain CloudFormation, nothing to translate."""
    parsed = load_sam(path)
    return Template(root=path.resolve().parent, sam=parsed, cloudformation=parsed)


def hub_bus_arn(hub: Stack) -> str:
    """The bus members forward to: the hub stack's HubEventBusArn output (hub mode), else the
    hub account's default bus."""
    return hub.outputs.get("HubEventBusArn") or (
        f"arn:aws:events:{hub.region}:{hub.account}:event-bus/default"
    )


def start_members(engine: LocalEngine, organization: LocalOrganization) -> Members:
    """Deploy member.yaml in every member account and Region (the engine's own deployer, on
    an assumed role there), and a forwarding rule in each non-member account of the fleet."""
    hub = engine.stack
    if hub is None:
        raise RuntimeError("deploy the hub first")
    members = Members(hub_bus_arn=hub_bus_arn(hub))
    template = member_template()
    for account in organization.members:
        for region in organization.regions:
            members.stacks[(account, region)] = deploy(
                template,
                name=f"certrelay-member-{region}",
                region=region,
                account=account,
                parameters={
                    "HubAccountId": organization.hub,
                    "HubEventBusArn": members.hub_bus_arn,
                    "ExternalId": organization.external_id,
                    "HubRoleNamePrefix": f"{hub.name}-",
                    "NamePrefix": organization.role_prefix,
                },
                runtime=engine.runtime,
                session=account_session(account, region),
            )
    for account, spec in engine.fleet.accounts.items():
        if spec.member:
            continue
        for region in spec.regions:
            _stray_forwarder(account, region, members.hub_bus_arn)
            members.forwarders.append((account, region))
    return members


def _stray_forwarder(account: str, region: str, bus_arn: str) -> None:
    """A rule an account outside the organisation set up to send its ACM events to the hub."""
    events = account_session(account, region).client("events", region_name=region)
    events.put_rule(
        Name="send-acm-events-to-certrelay",
        EventPattern=json.dumps({"source": ["aws.acm"]}),
        State="ENABLED",
    )
    events.put_targets(Rule="send-acm-events-to-certrelay", Targets=[{"Id": "hub", "Arn": bus_arn}])


def all_servers(fleet: Fleet) -> dict[str, FleetServer]:
    """Every server of the fleet: the hub's own and those of every account and Region."""
    servers = dict(fleet.servers)
    for _, place in fleet.places():
        servers.update(place.servers)
    return servers


def server_places(fleet: Fleet) -> dict[str, tuple[str, str]]:
    """instance id -> (account, region) for the servers of the other accounts."""
    return {
        instance: (account, region)
        for account, spec in fleet.accounts.items()
        for region, place in spec.regions.items()
        for instance in place.servers
    }


def seed_accounts(engine: LocalEngine, issuers: Issuers) -> dict[str, SeededCertificate]:
    """Issue every account's certificates into its own ACM, from the hub's issuers (a private
    CA shared through AWS RAM), and put each on its servers, as `_seed_targets` does."""
    seeded: dict[str, SeededCertificate] = {}
    for account, spec in engine.fleet.accounts.items():
        for region in spec.regions:
            placed = engine.fleet.placed(account, region)
            if any(c.distributed is not None for c in placed.certificates.values()):
                raise FleetError(f"{account}/{region}: distributed: is for the hub's certificates")
            local = Issuers(placed, engine.now)
            local.issuers, local.pca_arn = issuers.issuers, issuers.pca_arn
            seeded.update(seed_certificates(placed, now=engine.now, authorities=local))
    profiles = engine.profiles()
    for certificate in seeded.values():
        profile = profiles.get(certificate.spec.tags.get("certrelay:profile", ""))
        bundle: Any = certificate_backend(certificate.arn)._certificates[certificate.arn]
        for target in profile.targets if profile else []:
            for instance in target.instances or [] if target.kind == "server" else []:
                server = engine.servers.servers.get(instance)
                if server is not None:
                    spec_json = target.model_dump(mode="json")
                    seed_files(server, spec_json, bundle.cert, bundle.key, bundle.chain)
                    engine.servers.start_listener(server, spec_json)
    return seeded


def emit(event: dict[str, Any]) -> None:
    """What ACM does: put the event on the default bus of its own account and Region."""
    account, region = str(event.get("account", "")), str(event.get("region", ""))
    entry: dict[str, Any] = {
        "Source": event.get("source"),
        "DetailType": event.get("detail-type"),
        "Detail": json.dumps(event.get("detail") or {}),
        "Resources": list(event.get("resources") or []),
    }
    if event.get("time"):
        entry["Time"] = event["time"]
    events_backends[account][region].put_events([entry])
