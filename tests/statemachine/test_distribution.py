"""Export and distribution through the whole ASL: S3 and servers, verified, with rollback.

GIVEN web-private renewed by ACM and approved, WHEN the workflow exports and distributes it,
THEN the bundle sits encrypted in the stack's bucket, the S3 target has a copy, every server
serves the new certificate (a real TLS handshake), and a server whose reload fails is rolled
back to the certificate it served before while the others keep the new one.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator

import boto3
import pytest

from certrelay.cli.report import distributions
from certrelay.local import human
from certrelay.local.engine import LocalEngine
from certrelay.local.fleet.seed import load_fleet
from certrelay.local.results import Execution
from tests.statemachine.conftest import EVENTS, assert_no_secrets

WEB = "web-private"


def renew_and_approve(engine: LocalEngine) -> Execution:
    engine.renew(WEB)
    event = json.loads((EVENTS / "available.json").read_text(encoding="utf-8"))
    event = engine.certificate_event(event, WEB)
    (execution,) = human.send_and_decide(engine, event, "approve", reason="go").executions
    return execution


def bundle_of(execution: Execution) -> dict:
    for event in execution.history:
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") == "Export Certificate":
            return json.loads(details["output"])["bundle"]
    raise AssertionError("Export Certificate never finished")


def served(engine: LocalEngine) -> dict[str, str | None]:
    return {
        server.name: server.serving(port)
        for server in engine.servers.servers.values()
        for port in server.listeners
    }


def test_approved_renewal_reaches_the_bucket_and_every_server(engine: LocalEngine):
    before = served(engine)
    execution = renew_and_approve(engine)
    bundle = bundle_of(execution)

    assert execution.status == "SUCCEEDED"
    assert execution.states[-6:] == [
        "Report Distribution",
        "Record Distribution",
        "Announce Distribution",
        "Distributed Everywhere?",
        "Close Findings",
        "Renewal Distributed",
    ]
    assert {d["status"] for d in distributions(execution)} == {"DISTRIBUTED"}
    assert len(distributions(execution)) == 3
    after = served(engine)
    assert set(after.values()) == {bundle["fingerprint"]}
    assert before["web-1"] != bundle["fingerprint"], "the servers served the old certificate"
    for server in engine.servers.servers.values():
        key = server.path("/etc/ssl/web/key.pem")
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert server.path("/etc/ssl/web/cert.pem.bak").exists(), "the previous file is kept"
    report = engine.notifications()[-1]
    assert report["attributes"]["event_kind"] == "DistributionReport"
    assert report["body"].count("ok ") == 3
    partner = boto3.client("s3", region_name=engine.fleet.region).list_objects_v2(
        Bucket="partner-mtls-bundles"
    )
    copied = sorted(o["Key"].rsplit("/", 1)[-1] for o in partner["Contents"])
    assert copied == ["cert.pem", "chain.pem", "fullchain.pem"], "a partner gets no key"


def test_bundle_is_encrypted_with_the_stacks_key_and_the_key_stays_encrypted(
    engine: LocalEngine,
):
    execution = renew_and_approve(engine)
    bundle = bundle_of(execution)
    s3 = boto3.client("s3", region_name=engine.fleet.region)
    key_arn = engine.stack.resources["BundleKey"].attributes["Arn"]  # type: ignore[union-attr]

    bucket = engine.stack.resources["CertificateBucket"].ref  # type: ignore[union-attr]
    certificate_id = engine.certificates[WEB].arn.rsplit("/", 1)[-1]
    prefix = f"certificates/{certificate_id}/{bundle['serial']}/"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    names = sorted(o["Key"].removeprefix(prefix) for o in listed)
    assert names == ["cert.pem", "chain.pem", "fullchain.pem", "manifest.json", "privkey.pem"]
    for name in names:
        head = s3.head_object(Bucket=bucket, Key=prefix + name)
        assert head["ServerSideEncryption"] == "aws:kms", name
        assert head["SSEKMSKeyId"] == key_arn, name
        assert head["BucketKeyEnabled"] is True, name
    privkey = s3.get_object(Bucket=bucket, Key=prefix + "privkey.pem")["Body"].read()
    assert b"ENCRYPTED PRIVATE KEY" in privkey
    # the payload names the bundle (serial, fingerprint), never where it lives or its secret
    assert set(bundle) == {"serial", "fingerprint", "not_after", "created"}


@pytest.fixture
def fleet_with_a_broken_server() -> Iterator[LocalEngine]:
    fleet = load_fleet()
    assert fleet.profiles is not None
    web = fleet.profiles["web"]
    web["targets"].append({**web["targets"][1], "instances": ["i-0a1b2c3d4e5f60003"]})
    fleet.servers["i-0a1b2c3d4e5f60003"] = fleet.servers["i-0a1b2c3d4e5f60001"].model_copy(
        update={"name": "web-3", "reload_fails": True}
    )
    with LocalEngine(fleet=fleet, clock_speed=50) as engine:
        yield engine
        assert_no_secrets(engine, engine.executions)


def test_one_server_failing_leaves_the_others_installed_and_is_named(
    fleet_with_a_broken_server: LocalEngine,
):
    engine = fleet_with_a_broken_server
    before = served(engine)
    execution = renew_and_approve(engine)
    bundle = bundle_of(execution)

    assert execution.status == "FAILED"
    assert execution.error == "DistributionIncomplete"
    assert "i-0a1b2c3d4e5f60003" in (execution.cause or "")
    assert execution.states[-3:] == [
        "Raise Distribution Finding",
        "Forget Incomplete Event",
        "Distribution Incomplete",
    ]
    (finding,) = engine.findings()
    assert (finding["severity"], finding["status"]) == ("HIGH", "ACTIVE")
    statuses = {d["target"]: d["status"] for d in distributions(execution)}
    assert sorted(statuses.values()) == ["DISTRIBUTED", "DISTRIBUTED", "DISTRIBUTED", "FAILED"]
    after = served(engine)
    assert after["web-1"] == after["web-2"] == bundle["fingerprint"]
    assert after["web-3"] == before["web-3"], "the broken server serves its old certificate again"
    broken = engine.servers.servers["i-0a1b2c3d4e5f60003"]
    (run,) = [output for instance, _, output in engine.servers.runs if instance == broken.instance]
    # the agent's shape: the status line, the ERROR title, the notes, the agent's exit status
    assert run.startswith("ROLLED BACK: the reload failed (exit 1)\n\n----------ERROR-------\n")
    assert run.endswith("\nfailed to run commands: exit status 3")
    report = engine.notifications()[-1]
    assert "FAILED" in report["body"]
    # the owners read why, not the agent's last line
    assert "i-0a1b2c3d4e5f60003 Failed ROLLED BACK: the reload failed (exit 1)" in report["body"]
    assert "exit status 3" not in report["body"]


def test_certificate_revoked_before_export_is_reported_and_nothing_is_written(
    engine: LocalEngine,
):
    from moto.acm.models import acm_backends

    engine.renew(WEB)
    event = engine.certificate_event(
        json.loads((EVENTS / "available.json").read_text(encoding="utf-8")), WEB
    )
    _, started = engine.put_event(event)
    ((name, arn),) = started
    engine.wait_for_state(arn, "Request Approval")
    backend = acm_backends[engine.fleet.account][engine.fleet.region]
    backend._certificates[engine.certificates[WEB].arn].status = "REVOKED"
    links = []
    while not links:
        links = human.approval_links(engine, arn)
    assert human.press(links[0], "approve", "fine").status == 200
    execution = engine.wait(arn, name=name, seconds=60)

    assert execution.status == "FAILED"
    assert execution.error == "ExportRefused"
    assert execution.states[-4:] == [
        "Notify Export Failure",
        "Raise Export Finding",
        "Forget Failed Export",
        "Export Failed",
    ]
    assert [(f["problem"], f["severity"]) for f in engine.findings()] == [("ExportRefused", "HIGH")]
    bucket = engine.stack.resources["CertificateBucket"].ref  # type: ignore[union-attr]
    listed = boto3.client("s3", region_name=engine.fleet.region).list_objects_v2(Bucket=bucket)
    assert listed.get("KeyCount", 0) == 0
    assert engine.notifications()[-1]["attributes"]["event_kind"] == "ExportFailed"


def _fleet_with_window(window: dict) -> LocalEngine:
    fleet = load_fleet()
    assert fleet.profiles is not None
    fleet.profiles["web"]["approval"] = "auto"  # the week-long clock below outruns any approver
    fleet.profiles["web"]["window"] = window
    # The week-long clock would also shrink Send Install Command's 25-minute deadline to one
    # second of real time, so only the bucket target stays: the window is what is tested here.
    fleet.profiles["web"]["targets"] = [
        t for t in fleet.profiles["web"]["targets"] if t["kind"] == "s3"
    ]
    return LocalEngine(fleet=fleet, clock_speed=7 * 86400 / 2)  # a week passes in 2 seconds


def test_distribution_waits_for_the_profiles_maintenance_window():
    import datetime as dt

    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%a").lower()
    with _fleet_with_window({"days": [tomorrow], "start": "02:00", "end": "04:00"}) as engine:
        execution = renew_and_approve(engine)

    window_states = ["Maintenance Window?", "Find Window", "Window Open?", "Wait For Window"]
    assert execution.states[-1] == "Renewal Distributed"
    position = execution.states.index("Maintenance Window?")
    assert execution.states[position : position + 5] == [*window_states, "Export Certificate"]


def test_distribution_inside_an_open_window_goes_straight_on():
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    window = {  # open from two hours ago to two hours from now, even across midnight
        "days": sorted(
            {(now - dt.timedelta(hours=2)).strftime("%a").lower(), now.strftime("%a").lower()}
        ),
        "start": (now - dt.timedelta(hours=2)).strftime("%H:%M"),
        "end": (now + dt.timedelta(hours=2)).strftime("%H:%M"),
    }
    with _fleet_with_window(window) as engine:
        execution = renew_and_approve(engine)

    assert execution.states[-1] == "Renewal Distributed"
    assert "Find Window" in execution.states
    assert "Wait For Window" not in execution.states


def test_a_hybrid_server_reloaded_by_an_allow_listed_hook_script_gets_the_certificate():
    # GIVEN the web profile installs on a hybrid (mi-) server through hook scripts it allow-lists
    fleet = load_fleet()
    assert fleet.profiles is not None
    web = fleet.profiles["web"]
    web["script_dirs"] = ["/opt/certrelay/hooks"]
    web["targets"][1].update(
        instances=["mi-0123456789abcdef0"],
        reload="script:/opt/certrelay/hooks/reload-web",
        config_test="script:/opt/certrelay/hooks/check-web",
    )
    fleet.servers["mi-0123456789abcdef0"] = fleet.servers.pop("i-0a1b2c3d4e5f60001")
    with LocalEngine(fleet=fleet, clock_speed=50) as engine:
        # WHEN a renewal is approved
        execution = renew_and_approve(engine)
        bundle = bundle_of(execution)
        hybrid = engine.servers.servers["mi-0123456789abcdef0"]

        # THEN the hybrid server ran its own hooks and serves the new certificate
        assert execution.states[-1] == "Renewal Distributed", execution.states
        assert served(engine)[hybrid.name] == bundle["fingerprint"]
        assert hybrid.path("/opt/certrelay/hooks/reload-web").exists()
        assert hybrid.path("/opt/certrelay/hooks/check-web").exists()
        assert hybrid.hook_dirs.read_text() == f"{hybrid.path('/opt/certrelay/hooks')}\n"
