"""The local engine's organisation mode: several accounts on one embedded AWS (issue 12).

A hub (111111111111) runs template.yaml, members run member.yaml in each of their Regions, an
event starts in its own account and reaches the hub through the member's forwarding rule with
its account, Region and resources intact.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.iam.models import iam_backends
from moto.ssm.models import ssm_backends

from certrelay.local import moto_fixes
from certrelay.local.engine import ROOT, LocalEngine
from certrelay.local.fleet.seed import FleetError, load_fleet
from certrelay.local.org import (
    HUB_ACCOUNT,
    MEMBER_ACCOUNTS,
    NON_MEMBER_ACCOUNT,
    REGIONS,
    LocalOrganization,
    account_session,
)

MEMBER_ROLES = {
    f"certrelay-{kind}-{region}" for kind in ("read", "export", "install") for region in REGIONS
}


def _roles(account: str) -> set[str]:
    return {role.name for role in iam_backends[account]["global"].roles.values()}


def _documents(account: str, region: str) -> set[str]:
    return set(ssm_backends[account][region]._documents)


def _started_input(engine: LocalEngine, execution_arn: str) -> dict[str, Any]:
    (started,) = [e for e in engine.history(execution_arn) if e["type"] == "ExecutionStarted"]
    loaded: dict[str, Any] = json.loads(started["executionStartedEventDetails"]["input"])
    return loaded


@pytest.fixture(scope="module")
def org_engine() -> Iterator[LocalEngine]:
    with LocalEngine(organization=LocalOrganization(), clock_speed=200.0) as engine:
        yield engine


def test_a_bus_target_in_another_account_gets_the_original_event() -> None:
    # GIVEN moto with accounts following credentials, a member's rule that forwards ACM events
    # to the hub's bus in another Region, and a hub rule that starts a state machine
    started: list[tuple[str, dict[str, Any]]] = []
    machine = f"arn:aws:states:us-east-1:{HUB_ACCOUNT}:stateMachine:lifecycle"
    with (
        moto_fixes.accounts_follow_credentials(HUB_ACCOUNT, "us-east-1"),
        mock_aws(),
        moto_fixes.bus_delivers_to_state_machines(
            lambda _: None, lambda m, e: started.append((m, e))
        ),
    ):
        hub = boto3.client("events", region_name="us-east-1")
        hub.create_event_bus(Name="certrelay-hub")
        hub.put_rule(
            Name="acm",
            EventBusName="certrelay-hub",
            EventPattern=json.dumps({"source": ["aws.acm"]}),
        )
        hub.put_targets(
            Rule="acm", EventBusName="certrelay-hub", Targets=[{"Id": "m", "Arn": machine}]
        )
        member = account_session(MEMBER_ACCOUNTS[0], "eu-west-1").client(
            "events", region_name="eu-west-1"
        )
        member.put_rule(Name="forward", EventPattern=json.dumps({"source": ["aws.acm"]}))
        bus_arn = f"arn:aws:events:us-east-1:{HUB_ACCOUNT}:event-bus/certrelay-hub"
        member.put_targets(Rule="forward", Targets=[{"Id": "hub", "Arn": bus_arn}])
        certificate = f"arn:aws:acm:eu-west-1:{MEMBER_ACCOUNTS[0]}:certificate/0000-1111"
        # WHEN ACM in the member account puts an event on its default bus
        member.put_events(
            Entries=[
                {
                    "Source": "aws.acm",
                    "DetailType": "ACM Certificate Available",
                    "Resources": [certificate],
                    "Detail": json.dumps({"Action": "RENEWAL"}),
                }
            ]
        )
    # THEN the hub's rule starts its machine on the event as the member's account sent it
    # (moto alone re-puts it with the hub's account and Region and no resources)
    ((machine_arn, event),) = started
    assert machine_arn == machine
    assert (event["account"], event["region"], event["resources"]) == (
        MEMBER_ACCOUNTS[0],
        "eu-west-1",
        [certificate],
    )
    assert event["detail"] == {"Action": "RENEWAL"}


def test_org_engine_the_hub_stack_and_the_process_are_in_the_hub_account(
    org_engine: LocalEngine,
) -> None:
    # GIVEN the organisation engine WHEN it is up
    identity = boto3.client("sts", region_name="us-east-1").get_caller_identity()
    machines = org_engine._require_stack().state_machines
    # THEN its own credentials, its state machines (the workflow and, in hub mode, the
    # organisation sweep) and its functions are the hub's
    assert identity["Account"] == HUB_ACCOUNT == org_engine.fleet.account
    assert set(machines) == {"CertificateLifecycleStateMachine", "OrgSweepStateMachine"}
    assert {machine.split(":")[4] for machine in machines.values()} == {HUB_ACCOUNT}
    assert org_engine.parameters["OrganizationMode"] == "hub"
    assert org_engine.parameters["MemberAccountIds"] == ",".join(MEMBER_ACCOUNTS)
    assert org_engine.parameters["MemberRegions"] == ",".join(REGIONS)


def test_org_engine_member_stacks_exist_in_member_accounts_only(org_engine: LocalEngine) -> None:
    # GIVEN the organisation engine WHEN it is up
    # THEN each member account holds member.yaml's roles for every Region and, in each Region,
    # its install document; the hub and the non-member hold none of them
    assert set(org_engine.members.stacks) == {(a, r) for a in MEMBER_ACCOUNTS for r in REGIONS}
    for account in MEMBER_ACCOUNTS:
        assert _roles(account) >= MEMBER_ROLES
        for region in REGIONS:
            assert "certrelay-install-certificate" in _documents(account, region)
    for account in (HUB_ACCOUNT, NON_MEMBER_ACCOUNT):
        assert not MEMBER_ROLES & _roles(account)
        for region in REGIONS:
            assert "certrelay-install-certificate" not in _documents(account, region)


def test_org_engine_certificates_are_seeded_in_their_own_account_and_region(
    org_engine: LocalEngine,
) -> None:
    # GIVEN the demo fleet's accounts: section WHEN the engine is up
    arns = {name: seeded.arn for name, seeded in org_engine.certificates.items()}
    # THEN each certificate's ARN is in the account and Region the fleet gives it
    assert arns["payments-private"].split(":")[3:5] == ["eu-west-1", "222222222222"]
    assert arns["analytics-private"].split(":")[3:5] == ["us-east-1", "333333333333"]
    assert arns["outsider-private"].split(":")[3:5] == ["us-east-1", NON_MEMBER_ACCOUNT]
    assert arns["web-private"].split(":")[3:5] == ["us-east-1", HUB_ACCOUNT]
    hub_acm = boto3.client("acm", region_name="eu-west-1")
    assert not hub_acm.list_certificates()["CertificateSummaryList"]


def test_org_engine_a_member_event_reaches_the_hub_with_its_account_region_and_resources(
    org_engine: LocalEngine,
) -> None:
    # GIVEN a member's certificate in eu-west-1
    event = json.loads((ROOT / "events" / "approaching-expiration.json").read_text())
    event = org_engine.certificate_event(event, "payments-private")
    # WHEN ACM puts the event on the member's own bus
    matched, started = org_engine.put_event(event)
    # THEN the member's rule forwards it and the hub's rule starts the state machine on the
    # original event: the member's account, Region and certificate ARN
    assert matched
    assert len(started) == 1
    (name, arn) = started[0]
    org_engine.wait(arn, name=name, seconds=120)
    received = _started_input(org_engine, arn)
    assert received["account"] == "222222222222"
    assert received["region"] == "eu-west-1"
    assert received["resources"] == [org_engine.certificates["payments-private"].arn]


def test_org_engine_a_member_server_takes_commands_only_in_its_own_account(
    org_engine: LocalEngine,
) -> None:
    # GIVEN pay-1, a server in 222222222222/eu-west-1
    # WHEN the hub's own SSM (another account) sends it a command
    command = boto3.client("ssm", region_name="eu-west-1").send_command(
        InstanceIds=["i-0b2c3d4e5f6a70001"], DocumentName="AWS-RunShellScript"
    )["Command"]
    # THEN SSM there does not know the instance: undeliverable, and nothing ran
    invocations = ssm_backends[HUB_ACCOUNT]["eu-west-1"].get_command_by_id(command["CommandId"])
    assert [i["Status"] for i in invocations.invocations] == ["Undeliverable"]
    assert not [c for c in org_engine.servers.commands if c[:2] == (HUB_ACCOUNT, "eu-west-1")]


def test_a_fleet_member_account_outside_the_organisation_is_refused(tmp_path: Path) -> None:
    # GIVEN a fleet whose accounts: section names a member the organisation does not have
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(
        'accounts:\n  "444444444444":\n    regions:\n      us-east-1: {}\n', encoding="utf-8"
    )
    # WHEN the organisation engine takes it THEN it says which account, before deploying
    with pytest.raises(FleetError, match="444444444444"):
        LocalEngine(fleet=load_fleet(fleet_file), organization=LocalOrganization())


def test_a_fleet_certificate_name_is_one_certificate_in_every_account(tmp_path: Path) -> None:
    # GIVEN a certificate name used in the hub and again in a member account
    fleet_file = tmp_path / "fleet.yaml"
    certificate = "{type: PRIVATE, domain: a.example.com, days_to_expiry: 30}"
    fleet_file.write_text(
        f"certificates:\n  web: {certificate}\n"
        f'accounts:\n  "222222222222":\n    regions:\n      us-east-1:\n'
        f"        certificates:\n          web: {certificate}\n",
        encoding="utf-8",
    )
    # WHEN it is loaded THEN it is refused, naming the certificate and the account
    with pytest.raises(FleetError, match=r"web.*222222222222"):
        load_fleet(fleet_file)


def test_org_engine_a_member_server_runs_only_a_document_its_own_account_has(
    org_engine: LocalEngine,
) -> None:
    # GIVEN pay-1 in 222222222222/eu-west-1, and SSM there as the member's install role sees it
    ssm = account_session("222222222222", "eu-west-1").client("ssm", region_name="eu-west-1")
    # WHEN a command names a document that account does not have (the hub's own, say)
    # THEN SSM refuses it, and nothing is sent to the server
    with pytest.raises(ssm.exceptions.InvalidDocument):
        ssm.send_command(
            InstanceIds=["i-0b2c3d4e5f6a70001"], DocumentName="certrelay-InstallDocument"
        )
    assert not org_engine.servers.commands
