"""The organisation sweep (hub mode) on the local stack, across several accounts and Regions.

The embedded AWS holds one ACM per (account, Region). MOTO_ACCOUNT_ID is dropped once the stack
is deployed, so the org sweep function's AssumeRole really switches accounts (research §1): the
hub is the fleet's account, the members are 222… and 333…, and 444… is listed as a member but
has no member stack, so STS refuses its read role, as AWS does when the role does not exist.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certrelay.local.engine import LocalEngine
from certrelay.local.results import Execution

MEMBERS = ("222222222222", "333333333333")
NO_MEMBER_STACK = "444444444444"  # listed in MemberAccountIds, never ran member.yaml
REGIONS = ("us-east-1", "eu-west-1")
HUB_PARAMETERS = {
    "OrganizationMode": "hub",
    "MemberAccountIds": ",".join([*MEMBERS, NO_MEMBER_STACK]),
    "MemberRegions": ",".join(REGIONS),
    "MemberExternalId": "org-sweep-test-external-id",
}
SCHEDULE = "OrgSweepStateMachineDaily"
DUE, NOT_DUE = 30, 100  # days to expiry: 30 is a default threshold day, 100 is none


@contextlib.contextmanager
def several_accounts(hub: str) -> Iterator[None]:
    """Credentials decide the account again: unknown keys are the hub's, assumed roles theirs."""
    saved = os.environ.pop("MOTO_ACCOUNT_ID", None)
    try:
        with mock.patch("moto.iam.models.DEFAULT_ACCOUNT_ID", hub):
            yield
    finally:
        if saved is not None:
            os.environ["MOTO_ACCOUNT_ID"] = saved


@contextlib.contextmanager
def roles_refused(accounts: set[str]) -> Iterator[None]:
    """STS answers AccessDenied for any role in `accounts` (no member stack, so no role)."""
    from moto.sts.exceptions import STSClientError
    from moto.sts.models import STSBackend

    original = STSBackend.assume_role

    def assume_role(self: Any, **kwargs: Any) -> Any:
        role_arn = str(kwargs["role_arn"])
        if role_arn.split(":")[4] in accounts:
            raise STSClientError(
                "AccessDenied", f"not authorized to perform: sts:AssumeRole on {role_arn}"
            )
        return original(self, **kwargs)

    with mock.patch.object(STSBackend, "assume_role", assume_role):
        yield


@contextlib.contextmanager
def region_not_enabled(account: str, region: str) -> Iterator[None]:
    """ACM in that account and Region refuses the session's token, as a disabled Region does."""
    from moto.acm.responses import AWSCertificateManagerResponse
    from moto.core.exceptions import JsonRESTError

    original = AWSCertificateManagerResponse.list_certificates  # the engine's paged answer

    def list_certificates(self: Any) -> Any:
        if (self.current_account, self.region) == (account, region):
            raise JsonRESTError(
                "UnrecognizedClientException", "The security token included is invalid."
            )
        return original(self)

    with mock.patch.object(AWSCertificateManagerResponse, "list_certificates", list_certificates):
        yield


def import_certificate(account: str, region: str, name: str, days: int, now: dt.datetime) -> str:
    """A certificate in that account's ACM, expiring `days` calendar days from `now`."""
    from moto.acm.models import acm_backends

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    expiry = dt.datetime.combine((now + dt.timedelta(days=days)).date(), dt.time(12), dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(expiry)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    bundle = acm_backends[account][region].import_certificate(
        pem, key_pem, chain=None, arn=None, tags=[]
    )
    return str(bundle)


@pytest.fixture
def hub() -> Iterator[LocalEngine]:
    with (
        LocalEngine(parameters=HUB_PARAMETERS) as engine,
        several_accounts(engine.fleet.account),
        roles_refused({NO_MEMBER_STACK}),
    ):
        yield engine


def seed_members(engine: LocalEngine) -> dict[tuple[str, str], str]:
    """One due and one not-due certificate per (account, Region) beyond the hub's: the due ARNs."""
    due = {}
    for account in (*MEMBERS, NO_MEMBER_STACK):
        for region in REGIONS:
            host = f"{account[:3]}.{region}.example.com"
            due[(account, region)] = import_certificate(account, region, host, DUE, engine.now)
            import_certificate(account, region, f"later.{host}", NOT_DUE, engine.now)
    return due


def run_schedule(engine: LocalEngine) -> Execution:
    """What the hub's schedule does when due: start the org sweep with its input, wait."""
    import boto3

    schedule = engine.stack.schedules[SCHEDULE] if engine.stack else None
    assert schedule is not None
    assert ":stateMachine:" in schedule.target_arn, "in hub mode the schedule starts the sweep"
    sfn = boto3.client("stepfunctions", region_name=engine.fleet.region)
    arn = sfn.start_execution(
        stateMachineArn=schedule.target_arn, name="org-sweep-daily", input=schedule.input
    )["executionArn"]
    return engine.wait(arn, name="org-sweep-daily", seconds=120)


def sweep_reminders(engine: LocalEngine) -> list[dict[str, Any]]:
    return [e for e in engine.bus if e["source"] == "certrelay.sweep"]


def test_the_sweep_reports_a_member_whose_role_cannot_be_assumed_and_sweeps_every_other_pair(
    hub: LocalEngine,
):
    # GIVEN a hub, two members with member stacks and one without, in two Regions each
    due = seed_members(hub)
    hub_reminders_before = len(sweep_reminders(hub))

    # WHEN the daily schedule starts the organisation sweep
    run = run_schedule(hub)

    # THEN the run succeeds: the two pairs of the account without a role are reported, not fatal
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.states == [
        "List Sweep Pairs",
        "Sweep Every Pair",
        "Summarise Sweep",
        "Sweep Complete?",
        "Sweep Reported",
    ]
    summary = run.output
    assert (summary["pairs"], summary["swept"], summary["failed"]) == (8, 6, 2)
    assert summary["complete"] is True
    assert sorted((f["account"], f["region"], f["error"]) for f in summary["failures"]) == [
        (NO_MEMBER_STACK, "eu-west-1", "MemberRoleUnavailable"),
        (NO_MEMBER_STACK, "us-east-1", "MemberRoleUnavailable"),
    ]
    assert all("member.yaml" in f["cause"] for f in summary["failures"])
    # AND each member pair's due certificate got one reminder, as the member, on its own bus
    reminders = sweep_reminders(hub)[hub_reminders_before:]
    member_reminders = {
        (e["account"], e["region"]): e for e in reminders if e["account"] != hub.fleet.account
    }
    assert set(member_reminders) == {(a, r) for a in MEMBERS for r in REGIONS}
    for (account, region), event in member_reminders.items():
        assert event["resources"] == [due[(account, region)]]
        assert event["resources"][0].startswith(f"arn:aws:acm:{region}:{account}:certificate/")
        assert event["detail-type"] == "ACM Certificate Approaching Expiration"
        assert event["detail"]["DaysToExpiry"] == DUE
    assert not [e for e in reminders if e["account"] == NO_MEMBER_STACK]
    # AND the hub's own pairs were swept with its own credentials (the demo fleet's reminders)
    hub_pairs = {(e["account"], e["region"]) for e in reminders} - set(member_reminders)
    assert hub_pairs == {(hub.fleet.account, hub.fleet.region)}
    assert summary["sent"] == summary["due"] == len(reminders)


def test_failed_pairs_reach_operations_and_the_metric_counts_both_outcomes(
    hub: LocalEngine, capsys: pytest.CaptureFixture[str]
):
    # GIVEN the same organisation
    seed_members(hub)

    # WHEN the sweep runs
    run = run_schedule(hub)

    # THEN operations hear which pairs failed and why
    assert run.status == "SUCCEEDED"
    (message,) = [n for n in hub.notifications() if "sweep" in str(n.get("subject", ""))]
    assert message["subject"] == "certrelay sweep: 2 of 8 account/Region pairs failed"
    assert f"{NO_MEMBER_STACK}, us-east-1: MemberRoleUnavailable" in message["body"]
    assert f"{NO_MEMBER_STACK}, eu-west-1: MemberRoleUnavailable" in message["body"]
    # AND the SweepPairs metric (EMF on the function's stdout) counts swept and failed pairs
    emitted = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith('{"_aws"') and '"SweepPairs"' in line
    ]
    counted = {emf["outcome"]: emf["SweepPairs"] for emf in emitted}
    assert counted == {"swept": [6.0], "failed": [2.0]}
    assert {tuple(emf["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) for emf in emitted} == {
        ("outcome", "service")
    }


def test_a_region_not_enabled_in_one_member_is_reported_for_that_pair_only(hub: LocalEngine):
    # GIVEN eu-west-1 is not enabled in member 333…: its ACM refuses the session's token
    seed_members(hub)
    with region_not_enabled(MEMBERS[1], "eu-west-1"):
        # WHEN the sweep runs
        run = run_schedule(hub)

    # THEN that pair is RegionNotEnabled, the role-less account's pairs MemberRoleUnavailable,
    # and the run still succeeds
    assert run.status == "SUCCEEDED"
    errors = {(f["account"], f["region"]): f["error"] for f in run.output["failures"]}
    assert errors == {
        (MEMBERS[1], "eu-west-1"): "RegionNotEnabled",
        (NO_MEMBER_STACK, "us-east-1"): "MemberRoleUnavailable",
        (NO_MEMBER_STACK, "eu-west-1"): "MemberRoleUnavailable",
    }
    assert run.output["swept"] == 5
    reminded = {(e["account"], e["region"]) for e in sweep_reminders(hub)}
    assert (MEMBERS[1], "us-east-1") in reminded
    assert (MEMBERS[1], "eu-west-1") not in reminded


def test_each_pair_is_one_child_of_a_distributed_map_run(hub: LocalEngine):
    # GIVEN the organisation WHEN the sweep runs
    seed_members(hub)
    run = run_schedule(hub)

    # THEN its history shows one map run over the eight pairs, each child's result kept
    types = [e["type"] for e in run.history]
    assert types.count("MapRunStarted") == 1
    assert "MapRunSucceeded" in types
    started = next(e for e in run.history if e["type"] == "MapStateStarted")
    assert started["mapStateStartedEventDetails"]["length"] == 8
    summarise = next(
        e
        for e in run.history
        if e["type"] == "TaskScheduled" and "Summarise Sweep" in json.dumps(e, default=str)
    )
    parameters = json.loads(summarise["taskScheduledEventDetails"]["parameters"])
    results = parameters["Payload"]["sweep"]["results"]
    assert len(results) == 8
    assert all(set(r) >= {"account", "region"} for r in results)
