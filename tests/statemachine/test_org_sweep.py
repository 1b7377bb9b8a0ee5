"""The organisation sweep (hub mode) on the local engine's organisation: several accounts.

The hub is 111111111111; 222222222222 and 333333333333 run member.yaml in us-east-1 and
eu-west-1 (certrelay.local.org). 444444444444 is listed in MemberAccountIds but never ran
member.yaml: it has no read role, and STS refuses to assume a role that does not exist, as AWS
does (moto would assume any ARN, so `roles_must_exist` models that refusal).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certrelay.local.engine import LocalEngine
from certrelay.local.moto_fixes import roles_must_exist
from certrelay.local.org import HUB_ACCOUNT, MEMBER_ACCOUNTS, REGIONS, LocalOrganization
from certrelay.local.results import Execution

NO_MEMBER_STACK = "444444444444"  # listed in MemberAccountIds, never ran member.yaml
SCHEDULE = "OrgSweepStateMachineDaily"
DUE, NOT_DUE = 30, 100  # days to expiry: 30 is a default threshold day, 100 is none
PAIRS = 3 * len(REGIONS) + len(REGIONS)  # hub and two members, and the one without a stack


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
    members = ",".join([*MEMBER_ACCOUNTS, NO_MEMBER_STACK])
    with (
        LocalEngine(
            organization=LocalOrganization(),
            parameters={"MemberAccountIds": members},
        ) as engine,  # real time: a sped-up clock would cut Sweep Pair's 120 s deadline to 1 s
        roles_must_exist(),
    ):
        yield engine


def seed_members(engine: LocalEngine) -> dict[tuple[str, str], str]:
    """One due and one not-due certificate per (account, Region) beyond the hub's: the due ARNs."""
    due = {}
    for account in (*MEMBER_ACCOUNTS, NO_MEMBER_STACK):
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
    assert (summary["pairs"], summary["swept"], summary["failed"]) == (8, 6, 2), summary["failures"]
    assert summary["complete"] is True
    assert sorted((f["account"], f["region"], f["error"]) for f in summary["failures"]) == [
        (NO_MEMBER_STACK, "eu-west-1", "MemberRoleUnavailable"),
        (NO_MEMBER_STACK, "us-east-1", "MemberRoleUnavailable"),
    ]
    assert all("member.yaml" in f["cause"] for f in summary["failures"])
    # AND each member pair's due certificate got a reminder, as the member, on its own bus
    reminders = sweep_reminders(hub)[hub_reminders_before:]
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for event in reminders:
        by_pair.setdefault((event["account"], event["region"]), []).append(event)
    member_pairs = {(a, r) for a in MEMBER_ACCOUNTS for r in REGIONS}
    assert member_pairs <= set(by_pair)
    for (account, region), events in by_pair.items():
        for event in events:
            (arn,) = event["resources"]
            assert arn.startswith(f"arn:aws:acm:{region}:{account}:certificate/"), event
            assert event["detail-type"] == "ACM Certificate Approaching Expiration"
    for pair in member_pairs:
        reminded = {e["resources"][0]: e["detail"]["DaysToExpiry"] for e in by_pair[pair]}
        assert reminded[due[pair]] == DUE
    assert not [pair for pair in by_pair if pair[0] == NO_MEMBER_STACK]
    assert summary["sent"] == summary["due"] == len(reminders)
    # AND the member stacks forwarded them to the hub, whose workflow took each as the member's
    forwarded = [
        e for e in hub.wait_for_bus_executions(seconds=120) if _account_of(hub, e) != HUB_ACCOUNT
    ]
    assert {(_account_of(hub, e), _region_of(hub, e)) for e in forwarded} >= member_pairs
    assert {e.status for e in forwarded} == {"SUCCEEDED"}
    assert all(e.states[0] == "Triage Event" and "Record Event" in e.states for e in forwarded)


def _started(engine: LocalEngine, execution: Execution) -> dict[str, Any]:
    (started,) = [e for e in execution.history if e["type"] == "ExecutionStarted"]
    loaded: dict[str, Any] = json.loads(started["executionStartedEventDetails"]["input"])
    return loaded


def _account_of(engine: LocalEngine, execution: Execution) -> str:
    return str(_started(engine, execution)["account"])


def _region_of(engine: LocalEngine, execution: Execution) -> str:
    return str(_started(engine, execution)["region"])


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
    with region_not_enabled(MEMBER_ACCOUNTS[1], "eu-west-1"):
        # WHEN the sweep runs
        run = run_schedule(hub)

    # THEN that pair is RegionNotEnabled, the role-less account's pairs MemberRoleUnavailable,
    # and the run still succeeds
    assert run.status == "SUCCEEDED"
    errors = {(f["account"], f["region"]): f["error"] for f in run.output["failures"]}
    assert errors == {
        (MEMBER_ACCOUNTS[1], "eu-west-1"): "RegionNotEnabled",
        (NO_MEMBER_STACK, "us-east-1"): "MemberRoleUnavailable",
        (NO_MEMBER_STACK, "eu-west-1"): "MemberRoleUnavailable",
    }
    assert run.output["swept"] == 5
    reminded = {(e["account"], e["region"]) for e in sweep_reminders(hub)}
    assert (MEMBER_ACCOUNTS[1], "us-east-1") in reminded
    assert (MEMBER_ACCOUNTS[1], "eu-west-1") not in reminded


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
